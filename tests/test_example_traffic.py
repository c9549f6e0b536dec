"""The example's traffic: requests a server takes, and outcomes `slipway performance` reads back."""

import json

import pytest

from slipway.model import example_traffic as traffic
from slipway.monitoring import performance


def test_customers_are_instances_with_their_id_and_no_outcome():
    instances, ids, churned = traffic.customers("2025-09", 300, seed=1, drift=0.0)
    assert len(instances) == len(ids) == len(churned) == 300
    assert [instance["customer_id"] for instance in instances] == ids.tolist()
    assert not {"event_timestamp", "churned"} & set(instances[0])
    missing = [i for i in instances if i["days_since_last_login"] is None]
    assert missing  # the example's never-logged-in customers: null, as a client sends a missing value
    json.dumps(instances, allow_nan=False)  # plain JSON: no NaN, no NumPy types


def test_outcomes_read_back_with_the_time_each_prediction_was_asked_for(tmp_path):
    instances, ids, churned = traffic.customers("2025-09", 20, seed=1, drift=0.0)
    sent_at = [1_795_000_000.123456 + i for i in range(20)]
    path = tmp_path / "labels.csv"
    traffic.outcomes(ids, churned, sent_at).to_csv(path, index=False)
    read = performance.read_labels(str(path), "customer_id", "churned", "event_timestamp")
    assert read["id"].tolist() == [str(i) for i in ids] and read["label"].tolist() == churned.tolist()
    assert read["time"].tolist() == pytest.approx(sent_at, abs=1e-6)
