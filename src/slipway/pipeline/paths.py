"""Where the stages read and write, relative to the repository root (mirrors ``dvc.yaml``), and
the column ingest adds to what it writes."""

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
