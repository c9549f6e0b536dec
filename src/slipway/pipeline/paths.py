"""Where the stages read and write, relative to the repository root (mirrors ``dvc.yaml``)."""

from pathlib import Path

INTERIM = Path("data/interim")
FEATURES = Path("data/features")
MODELS = Path("models")
REPORTS = Path("reports")
PLOTS = REPORTS / "plots"

TRAIN_RAW = INTERIM / "train.parquet"
TEST_RAW = INTERIM / "test.parquet"
VALIDATION_REPORT = REPORTS / "validation.json"
TRAIN_FEATURES = FEATURES / "train.parquet"
TEST_FEATURES = FEATURES / "test.parquet"
FEATURE_SPEC = FEATURES / "spec.json"
METRICS = REPORTS / "metrics.json"
