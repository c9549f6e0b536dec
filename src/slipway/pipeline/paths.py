"""Where the stages read and write, relative to the repository root (mirrors ``dvc.yaml``), the
column ingest adds to what it writes, and what ``dvc.yaml`` itself says of its stages."""

from pathlib import Path

INTERIM = Path("data/interim")
FEATURES = Path("data/features")
MODELS = Path("models")
REPORTS = Path("reports")
PLOTS = REPORTS / "plots"

TRAIN_RAW = INTERIM / "train.parquet"  # both splits carry BATCH_COLUMN
TEST_RAW = INTERIM / "test.parquet"
VALIDATION_REPORT = REPORTS / "validation.json"
TRAIN_FEATURES = FEATURES / "train.parquet"
TEST_FEATURES = FEATURES / "test.parquet"
FEATURE_SPEC = FEATURES / "spec.json"
METRICS = REPORTS / "metrics.json"

# The batch each ingested row came from (a file of data.source): validate names it with every
# problem, so the broken export can be found. It is never a feature.
BATCH_COLUMN = "__batch__"


def pipeline_stages(dvc_yaml: Path) -> dict:
    """The ``stages`` of a ``dvc.yaml``, in its order; none when there is no such file."""
    if not dvc_yaml.is_file():
        return {}
    import yaml

    return yaml.safe_load(dvc_yaml.read_text()).get("stages") or {}


def uncached_outputs(root: Path) -> list[str]:
    """The stage outputs ``dvc.yaml`` marks ``cache: false`` (metrics, plots, reports): git, not
    the DVC cache, holds them, so a commit of ``dvc.lock`` must carry them or the two disagree."""
    found = []
    for stage in pipeline_stages(root / "dvc.yaml").values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind) or []:
                if isinstance(entry, dict):
                    found += [name for name, options in entry.items() if (options or {}).get("cache") is False]
    return found
