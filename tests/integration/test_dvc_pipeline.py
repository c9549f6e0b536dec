"""The real `dvc repro` on the real stage graph, in a scratch repository."""

import json

import pandas as pd
from sklearn.datasets import load_wine

from tests.integration.conftest import ran_stages

STAGES = ["ingest", "validate", "featurize", "train", "evaluate", "gate"]


def pr_report(project) -> str:
    return project.run("slipway", "pr-report", "--base", "HEAD").stdout


def test_repro_runs_every_stage_then_nothing_then_only_what_a_param_touches(example_project):
    project = example_project
    first = project.repro()
    assert ran_stages(first.stdout) == STAGES
    model = json.loads((project.root / "models/model.json").read_text())
    metrics = json.loads((project.root / "reports/metrics.json").read_text())
    assert metrics["model_version"] == model["model_version"]
    assert metrics["roc_auc"] > 0.7
    assert model["data"]["raw"]["data/raw"].endswith(".dir")
    assert model["git_commit"] == project.run("git", "rev-parse", "HEAD").stdout.strip()
    assert model["git_uncommitted"] == []  # dvc.lock and reports/ changed during the run: DVC's own
    project.commit("first model")

    again = project.repro()
    assert ran_stages(again.stdout) == []
    assert "Data and pipelines are up to date." in again.stdout

    project.set_params({"evaluate.seed": 1})
    assert ran_stages(project.repro().stdout) == ["evaluate"]

    project.set_params({"train.hyperparameters.learning_rate": 0.05})
    assert ran_stages(project.repro().stdout) == ["train", "evaluate", "gate"]
    model = json.loads((project.root / "models/model.json").read_text())
    assert model["git_uncommitted"] == ["params.yaml"]  # trained before the change was committed
    project.commit("slower learning")

    params_diff = project.run("dvc", "params", "diff", "HEAD~1", "--md").stdout
    assert "train.hyperparameters.learning_rate" in params_diff and "0.05" in params_diff
    metrics_diff = project.run("dvc", "metrics", "diff", "HEAD~1", "--json").stdout
    assert "roc_auc" in json.loads(metrics_diff)["reports/metrics.json"]
    plots = json.loads(project.run("dvc", "plots", "diff", "HEAD~1", "--json").stdout)["data"]
    assert sorted(plots) == [f"reports/plots/{name}" for name in
                             ("confusion.csv", "importance.json", "precision_recall.json", "roc.json")]
    for [plot] in plots.values():  # each drawn from both models' data
        assert {row["rev"] for row in plot["content"]["data"]["values"]} == {"HEAD~1", "workspace"}
    assert project.run("dvc", "status").stdout.strip() == "Data and pipelines are up to date."
    report = pr_report(project)
    assert "Gate: PASS" in report
    assert "_no metrics changed against HEAD_" in report and "_no params changed against HEAD_" in report

    project.set_params({"gate.min_roc_auc": 0.999})
    assert project.repro(check=False).returncode != 0
    report = pr_report(project)  # the gate ran and failed: its own verdict, fresh
    assert "Gate: FAIL" in report and "test roc_auc" in report
    assert "gate.min_roc_auc" in report and "0.999" in report  # the params diff against HEAD


def test_failed_stage_keeps_the_previous_outputs(example_project):
    project = example_project
    project.repro()
    before = (project.root / "models/model.json").read_text()
    project.set_params({"train.hyperparameters.learning_rat": 0.1})
    failed = project.repro(check=False)
    assert failed.returncode != 0
    assert "params: train.hyperparameters: " in failed.stderr and "learning_rat" in failed.stderr
    assert (project.root / "models/model.json").read_text() == before
    assert (project.root / "models/model.skops").is_file()
    assert not list((project.root / "models").glob(".*tmp"))
    report = pr_report(project)  # the committed gate.md is not this change's verdict
    assert "Pipeline stopped at `train`" in report and "Gate: PASS" not in report


def test_bad_data_fails_validate_with_every_problem_and_nothing_downstream_runs(example_project):
    project = example_project
    batch = project.root / "data/raw/2025-04.parquet"
    frame = pd.read_parquet(batch)
    frame.loc[:2, "age"] = 3
    frame.loc[5:9, "contract"] = "lifetime"
    frame = pd.concat([frame, frame.iloc[[20]]])  # a duplicated (customer_id, event_timestamp)
    frame.to_parquet(batch)
    result = project.repro(check=False)
    assert result.returncode != 0
    assert ran_stages(result.stdout) == ["ingest", "validate"]
    assert "validate: 3 problem(s) in the ingested data" in result.stderr
    assert "column 'age', rule min=18: 3 rows, e.g. [3] (in 2025-04.parquet)" in result.stderr  # the export to fix
    assert "column 'contract', rule allowed=" in result.stderr and "'lifetime'" in result.stderr
    assert "rule unique_key: 2 rows" in result.stderr
    assert not (project.root / "data/features").exists()
    assert not (project.root / "models").exists()


def test_bring_your_own_multiclass_csv(project):
    """Another team's data: wine cultivars from a CSV, no id or timestamp, three classes; amounts
    written with thousands separators ('1,065') and '?' for an unknown cellar."""
    wine = load_wine(as_frame=True)
    frame = wine.frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map(dict(enumerate(["barolo", "grignolino", "barbera"])))
    frame["cellar"] = (frame.index % 3).map({0: "north", 1: "south", 2: "east"}).where(frame.index % 40 > 0, "?")
    (project.root / "data/wine").mkdir(parents=True)
    frame.assign(proline=frame["proline"].map("{:,.0f}".format)).to_csv(project.root / "data/wine/wine.csv",
                                                                        index=False)
    frame.drop(columns="cellar").to_csv(project.root / "data/wine/wine-v0.csv", index=False)  # not matched
    project.set_params({
        "data.source": "data/wine", "data.pattern": "wine.*", "data.format": "csv", "data.target": "cultivar",
        "data.id_column": None, "data.timestamp_column": None, "data.thousands": ",", "data.na_values": ["?"],
        "ingest.split": "random", "ingest.test_size": 0.3,
        "validate.columns": {"cultivar": {"allowed": ["barolo", "grignolino", "barbera"]},
                             "alcohol": {"type": "numeric", "min": 0, "max": 20}},
        "featurize.derived": [],
        # Wine's chemistry really does predict the cultivar: a team sets its own leakage bound.
        "gate.max_feature_label_pps": 0.9,
        # 125 against 53 rows: a KS distance under about 0.22 is what chance alone gives (p = 0.05).
        "gate.max_feature_drift": 0.25,
    })
    project.run("dvc", "add", "-q", "data/wine")
    project.commit("wine data")
    result = project.repro()
    assert ran_stages(result.stdout) == STAGES
    model = json.loads((project.root / "models/model.json").read_text())
    assert model["task"] == "multiclass"
    assert model["classes"] == ["barbera", "barolo", "grignolino"]
    assert model["features"]["categorical"] == [{"name": "cellar", "categories": ["east", "north", "south"]}]
    assert {"alcohol", "proline"} <= set(model["features"]["numeric"])
    assert model["features"]["missing_values"] == ["?"]  # the server reads '?' as training did
    metrics = json.loads((project.root / "reports/metrics.json").read_text())
    assert set(metrics["per_class"]) == {"barbera", "barolo", "grignolino"}
    assert metrics["accuracy"] > 0.85


class ReadRecorder(dict):
    """params as a stage sees them, recording every dotted key it reads (or asks for)."""

    def __init__(self, data: dict, seen: set, prefix: str = ""):
        super().__init__({k: ReadRecorder(v, seen, f"{prefix}{k}.") if isinstance(v, dict) else v
                          for k, v in data.items()})
        self._seen, self._prefix = seen, prefix

    def __getitem__(self, key):
        self._seen.add(self._prefix + str(key))
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._seen.add(self._prefix + str(key))
        return super().get(key, default)

    def __contains__(self, key):
        self._seen.add(self._prefix + str(key))
        return super().__contains__(key)


# Declared params the example configuration does not reach: only a random split reads the seed.
CONDITIONAL_READS = {"ingest": {"ingest.seed"}}


def test_each_stage_declares_exactly_the_params_it_reads(example_project, monkeypatch):
    """dvc.yaml's promise: a param change reruns the stages that read it (none is missed, which
    would leave stale outputs) and only those. Each stage runs in-process on recording params."""
    import importlib

    import yaml

    from slipway import params as params_module

    monkeypatch.chdir(example_project.root)
    graph = yaml.safe_load((example_project.root / "dvc.yaml").read_text())["stages"]
    params = params_module.load("params.yaml")
    for stage in STAGES:
        seen: set[str] = set()
        importlib.import_module(f"slipway.pipeline.{stage}").main(ReadRecorder(params, seen))
        read = {key for key in seen if not any(other.startswith(key + ".") for other in seen)}
        declared = set(graph[stage]["params"])

        def covered(key, by):
            return any(key == entry or key.startswith(entry + ".") for entry in by)

        assert {k for k in read if not covered(k, declared)} == set(), f"{stage} reads undeclared params"
        unread = {d for d in declared if not any(covered(k, {d}) for k in read)}
        assert unread == CONDITIONAL_READS.get(stage, set()), f"{stage} declares params it never reads"


# Modules every stage shares that decide nothing about its outputs' content: errors, params
# parsing, atomic writing, output paths, package markers, and the git/DVC plumbing the gate's
# champion lookup goes through (the production overlay itself is a gate dependency).
INFRASTRUCTURE = {"slipway", "slipway.errors", "slipway.params", "slipway.io", "slipway.pipeline",
                  "slipway.pipeline.paths", "slipway.model", "slipway.monitoring", "slipway.release",
                  "slipway.release.dvc", "slipway.release.gitops", "slipway.release.overlay"}


def test_each_stage_declares_the_code_it_runs(example_project):
    """A stage's code dependencies cover every slipway module it imports while it runs: a change
    to one it does not declare would leave its outputs stale."""
    import sys

    import yaml

    example_project.repro()
    graph = yaml.safe_load((example_project.root / "dvc.yaml").read_text())["stages"]
    for stage in STAGES:
        code = (f"import sys; from slipway import params; from slipway.pipeline import {stage}; "
                f"{stage}.main(params.load('params.yaml')); "
                "print(' '.join(n for n in sys.modules if n.startswith('slipway')), file=sys.stderr)")
        ran = example_project.run(sys.executable, "-c", code)
        imported = set(ran.stderr.strip().splitlines()[-1].split()) - INFRASTRUCTURE
        declared = {d for d in graph[stage]["deps"] if d.startswith("src/")}
        files = {"src/" + name.replace(".", "/") + ".py" for name in imported}
        assert files - declared == set(), f"{stage} runs code it does not declare"


def test_an_experiment_runs_its_own_copy_of_the_code(example_project):
    """`dvc exp run --temp` (like a queued experiment) runs the pipeline in a copy of the
    repository: its stages run that copy's src/, not the checkout the editable install points at
    (which lacks the feature added here)."""
    features = example_project.root / "src/slipway/model/features.py"
    features.write_text(features.read_text() + (
        '\nDERIVED_FEATURES["tenure_days"] = DerivedFeature(\n'
        '    ("tenure_months",), lambda cols: cols["tenure_months"] * 30.0, "tenure in days")\n'))
    derived = example_project.params["featurize"]["derived"]
    example_project.set_params({"featurize.derived": [*derived, "tenure_days"]})
    example_project.commit("a derived feature")

    # featurize refuses a derived feature its features.py does not define (exit 2)
    ran = example_project.run("dvc", "exp", "run", "--temp", "--name", "tenure-days", "featurize")
    assert "Ran experiment(s): tenure-days" in ran.stdout
