import json

import pandas as pd

from slipway.pipeline import featurize, ingest, paths


def test_a_feature_with_one_value_in_every_training_row_is_named(churn, params, workdir, capsys):
    """A fraud team's export carried a flag that was 1 on every row: the model learnt nothing from it, and
    every client had to send it. The stage still writes its outputs."""
    churn = churn.assign(channel="web", legacy_flag=1)
    churn.loc[churn.index[::7], "churned_before"] = 1.0  # one value beside missing ones: two
    train, test = ingest.split(churn, params)
    paths.TRAIN_RAW.parent.mkdir(parents=True)
    train.to_parquet(paths.TRAIN_RAW)
    test.to_parquet(paths.TEST_RAW)
    assert featurize.single_valued(train, featurize.build_spec(train, params)) == {"legacy_flag": 1, "channel": "web"}
    featurize.main(params)
    assert capsys.readouterr().err == (
        f"featurize: warning: 'legacy_flag' is 1, 'channel' is 'web' in all {len(train)} training rows: the model "
        "learns nothing from such a feature, yet every request must send it; leave it out (data.drop_columns) "
        "unless later data varies\n")
    assert "legacy_flag" in json.loads(paths.FEATURE_SPEC.read_text())["numeric"]
    assert len(pd.read_parquet(paths.TRAIN_FEATURES)) == len(train)


def test_the_example_data_has_no_feature_of_one_value(churn, params):
    train, _ = ingest.split(churn, params)
    assert featurize.single_valued(train, featurize.build_spec(train, params)) == {}
