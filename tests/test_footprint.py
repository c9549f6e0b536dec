"""The server's memory against the overlays' limits: quantities, the rendered Deployments, the
verdict, and what serve_check measures (rendering and measuring faked; the real server and kubectl
are in tests/integration/test_serve_check.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slipway.release import footprint
from slipway.release.footprint import FootprintError, ServerPod, check, quantity_bytes, request_body, server_pods

MiB = 2 ** 20


@pytest.mark.parametrize(("value", "expected"), [
    ("1Gi", 2 ** 30), ("512Mi", 512 * MiB), ("1.5Gi", 1536 * MiB), ("128974848", 128974848), (1073741824, 2 ** 30),
    ("129e6", 129_000_000), ("129M", 129_000_000), ("1G", 10 ** 9), ("100k", 100_000), ("1E", 10 ** 18),
    ("128974848000m", 128974848), ("+1Gi", 2 ** 30), (".5Gi", 512 * MiB),
])
def test_a_memory_quantity_is_read_as_kubernetes_reads_it(value, expected):
    assert quantity_bytes(value, "here") == expected


@pytest.mark.parametrize("value", ["1 Gi", " 1Gi", "1GB", "1e999", "1e300Ei", "1gi", "-1Gi", "Gi", "", "lots", True,
                                   None, ["1Gi"], "1e"])
def test_anything_else_is_refused_naming_where(value):
    with pytest.raises(FootprintError, match=rf"^canary: memory limit: {re.escape(repr(value))} is not a "
                                             r"memory quantity \(such as 1Gi or 512Mi\)$"):
        quantity_bytes(value, "canary: memory limit")


def deployment(name: str, containers: list[dict]) -> dict:
    return {"kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": containers}}}}


def test_each_deployments_server_container_is_found_with_its_limit_and_memory_settings():
    docs = [
        {"kind": "Service", "metadata": {"name": "slipway"}},
        deployment("slipway", [
            {"name": "proxy", "resources": {"limits": {"memory": "64Mi"}}},
            {"name": "server", "resources": {"limits": {"memory": "1Gi", "cpu": "2"}},
             "env": [{"name": "SLIPWAY_TRACK", "value": "stable"}, {"name": "SLIPWAY_WORKERS", "value": "2"},
                     {"name": "SLIPWAY_MAX_BATCH", "value": 500},
                     {"name": "SLIPWAY_THREADS", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}]},
        ]),
        deployment("other", [{"name": "server"}]),
    ]
    assert server_pods(docs, "production") == [
        ServerPod("production: Deployment slipway", 2 ** 30, (("SLIPWAY_MAX_BATCH", "500"), ("SLIPWAY_WORKERS", "2"))),
        ServerPod("production: Deployment other", None, ()),
    ]


def test_an_overlay_without_the_server_is_refused():
    with pytest.raises(FootprintError, match="^canary: no Deployment with a container named 'server'$"):
        server_pods([deployment("slipway", [{"name": "app"}])], "canary")


def test_a_bad_limit_names_its_deployment():
    docs = [deployment("slipway", [{"name": "server", "resources": {"limits": {"memory": "1GB"}}}])]
    with pytest.raises(FootprintError, match=r"^canary: Deployment slipway: memory limit: '1GB' is not"):
        server_pods(docs, "canary")


WORKERS_2 = (("SLIPWAY_WORKERS", "2"),)


def test_a_server_within_every_limit_is_reported_per_deployment():
    pods = [ServerPod("canary: Deployment a", 1024 * MiB, WORKERS_2), ServerPod("production: Deployment b", None, ())]
    assert check(pods, {WORKERS_2: 400 * MiB, (): 300 * MiB}, "abc") == [
        "canary: Deployment a: the server with model abc (SLIPWAY_WORKERS=2) holds 400 MiB, 39% of its memory "
        "limit 1,024 MiB",
        "production: Deployment b: the server with model abc (the image's settings) holds 300 MiB; the container "
        "has no memory limit",
    ]


def test_a_server_past_a_limit_is_refused_naming_every_deployment_it_does_not_fit():
    pods = [ServerPod("canary: Deployment a", 512 * MiB, WORKERS_2), ServerPod("production: Deployment b", 2048 * MiB,
                                                                               WORKERS_2),
            ServerPod("staging: Deployment c", 600 * MiB, WORKERS_2)]
    with pytest.raises(FootprintError) as refused:
        check(pods, {WORKERS_2: 700 * MiB}, "abc")
    message = str(refused.value)
    assert message.startswith("the server holds more than the 90% of its memory limit serve-check allows (past the "
                              "limit it is OOMKilled and never ready; the rest is for what no measurement here sees: "
                              "kernel memory, many connections at once): canary: "
                              "Deployment a: the server with model abc (SLIPWAY_WORKERS=2) holds 700 MiB, 137% of "
                              "its memory limit 512 MiB; staging: Deployment c: ")
    assert "production" not in message
    assert message.endswith("Raise the server container's resources.limits.memory (kustomize/base/workload/"
                            "deployment.yaml, or a patch in the overlay), or fewer workers (SLIPWAY_WORKERS), or a "
                            "smaller model")


def test_up_to_the_allowed_share_of_the_limit_fits():
    pod = ServerPod("canary: Deployment a", 1000 * MiB, ())
    assert check([pod], {(): 900 * MiB}, "abc")[0].endswith("holds 900 MiB, 90% of its memory limit 1,000 MiB")
    with pytest.raises(FootprintError, match=r"^the server holds more than the 90% .* holds 901 MiB, 90% of its"):
        check([pod], {(): 901 * MiB}, "abc")
    assert check([pod], {(): 1000 * MiB}, "abc", max_share=1.0)[0].endswith("100% of its memory limit 1,000 MiB")
    with pytest.raises(FootprintError, match=r"^the server holds more than the 50% "):
        check([pod], {(): 501 * MiB}, "abc", max_share=0.5)


def test_the_request_body_is_rows_of_the_test_split_repeated_to_the_batch_size(tmp_path):
    split = tmp_path / "test.parquet"
    pd.DataFrame({"tenure": [1.5, np.nan, 3.0], "plan": ["basic", None, "pro"], "churned": [0, 1, 0]}).to_parquet(split)
    body = json.loads(request_body(split, ["tenure", "plan"], 5))
    assert body == {"instances": [{"tenure": 1.5, "plan": "basic"}, {"tenure": None, "plan": None},
                                  {"tenure": 3.0, "plan": "pro"}, {"tenure": 1.5, "plan": "basic"},
                                  {"tenure": None, "plan": None}]}


def test_no_test_split_or_an_empty_one_is_named(tmp_path):
    with pytest.raises(FootprintError, match="test.parquet not found: run the pipeline"):
        request_body(tmp_path / "test.parquet", ["a"], 5)
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(FootprintError, match="empty.parquet has no rows to send"):
        request_body(tmp_path / "empty.parquet", ["a"], 5)


def test_the_servers_log_is_read_line_by_line_skipping_what_is_not_whole_json():
    log = '{"msg": "model abc loaded from /m"}\nBooting worker\n{"msg": "model abc lo'
    assert footprint._messages(log) == ["model abc loaded from /m"]


def test_serve_check_measures_once_per_distinct_settings_with_the_largest_batch_each_accepts(
        bundle_dir, tmp_path, monkeypatch):
    from slipway.featureset import FeatureSpec

    metadata = json.loads((bundle_dir / "model.json").read_text())
    inputs = FeatureSpec.from_dict(metadata["features"]).inputs
    split = tmp_path / "test.parquet"
    pd.DataFrame({name: [1.0] for name in inputs}).to_parquet(split)
    rendered = {
        "canary": [deployment("slipway-canary", [{"name": "server", "resources": {"limits": {"memory": "1Gi"}},
                                                  "env": [{"name": "SLIPWAY_MAX_BATCH", "value": "7"}]}])],
        "production": [deployment("slipway", [{"name": "server", "resources": {"limits": {"memory": "2Gi"}}}])],
        "staging": [deployment("slipway", [{"name": "server", "resources": {"limits": {"memory": "3Gi"}}}])],
    }
    monkeypatch.setattr("slipway.release.manifests.render", lambda overlay: rendered[Path(overlay).name])
    measured = []

    def measure(model_dir, settings, body):
        measured.append((model_dir, settings, len(json.loads(body)["instances"])))
        return 100 * MiB

    monkeypatch.setattr(footprint, "measure", measure)
    lines = footprint.serve_check(bundle_dir, split, [Path("o/canary"), Path("o/production"), Path("o/staging")])
    assert measured == [(bundle_dir, {"SLIPWAY_MAX_BATCH": "7"}, 7), (bundle_dir, {}, 1000)]
    assert [line.split(":")[0] for line in lines] == ["canary", "production", "staging"]
    assert all(f"model {metadata['model_version']} " in line for line in lines)
    with pytest.raises(FootprintError, match=r"more than the 5% of its memory limit .* canary: Deployment slipway-"):
        footprint.serve_check(bundle_dir, split, [Path("o/canary")], max_share=0.05)  # 100 MiB of 1 GiB


def test_the_verdict_for_the_pull_request():
    assert footprint.markdown(["canary: a holds 1 MiB", "production: b holds 1 MiB"]) == (
        "### Server memory\n\n- canary: a holds 1 MiB\n- production: b holds 1 MiB\n")
    refused = footprint.markdown(None, "the server would be killed")
    assert refused == "### ⛔ Server memory\n\nthe server would be killed\n"


def test_requests_go_on_until_every_worker_has_answered_one(tmp_path, monkeypatch):
    """A worker's first prediction opens its counts file: here worker 12 answers in the third round."""
    sent = []

    def predict(url, body):
        sent.append(body)
        if len(sent) == 5:
            (tmp_path / "slipway_predictions_abc_12.counts").touch()

    (tmp_path / "slipway_predictions_abc_11.counts").touch()
    monkeypatch.setattr(footprint, "_predict", predict)
    monkeypatch.setattr(footprint, "_children", lambda pid: [11, 12])
    footprint._reach_every_worker("http://x", b"{}", 10, 2, tmp_path)
    assert len(sent) == 6  # three rounds of two


def test_a_worker_that_never_answers_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(footprint, "_predict", lambda url, body: None)
    monkeypatch.setattr(footprint, "_children", lambda pid: [11, 12])
    monkeypatch.setattr(footprint, "ROUNDS", 3)
    (tmp_path / "slipway_predictions_abc_11.counts").touch()
    with pytest.raises(FootprintError, match=r"^not every one of the server's 2 workers had answered after 3 rounds"):
        footprint._reach_every_worker("http://x", b"{}", 10, 2, tmp_path)


def test_the_servers_memory_counts_each_page_once_whichever_reading_sees_more(monkeypatch):
    """Alone, the proportional sizes are exact; beside processes mapping the same libraries they
    read less, and the private pages plus the largest shared set read more."""
    def resident(pss, private, shared):
        return {"Pss": pss * MiB, "Private_Clean": 0, "Private_Dirty": private * MiB, "Shared_Clean": shared * MiB,
                "Shared_Dirty": 0}

    alone = {1: resident(60, 10, 90), 2: resident(150, 100, 120), 3: resident(150, 100, 120)}
    monkeypatch.setattr(footprint, "_resident", alone.get)
    assert footprint.server_memory([1, 2, 3]) == 360 * MiB  # > 210 + 120
    beside_others = {1: resident(30, 10, 90), 2: resident(120, 100, 120), 3: resident(120, 100, 120)}
    monkeypatch.setattr(footprint, "_resident", beside_others.get)
    assert footprint.server_memory([1, 2, 3]) == 330 * MiB  # 210 + 120 > 270


def test_a_processs_resident_pages_are_read_by_kind():
    import os

    sizes = footprint._resident(os.getpid())
    assert set(sizes) == {"Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty"}
    assert 0 < sizes["Pss"] <= sum(v for k, v in sizes.items() if k != "Pss")
