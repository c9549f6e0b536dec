import numpy as np

from slipway.model import example_data as gen


def test_generator_is_seeded_and_realistic():
    first = gen.generate_month("2025-03", 2000, seed=1)
    again = gen.generate_month("2025-03", 2000, seed=1)
    assert first.equals(again)
    assert len(first) == 2000
    assert first["customer_id"].is_unique
    assert first["event_timestamp"].between("2025-03-01", "2025-04-01").all()
    assert set(first["contract"]) == set(gen.CONTRACTS)
    assert 0.1 < first["churned"].mean() < 0.35
    assert 0.005 < first["days_since_last_login"].isna().mean() < 0.05


def test_months_differ_and_drift_shifts_features_and_rule():
    base = gen.generate_month("2025-03", 5000, seed=1, drift=0.0)
    other = gen.generate_month("2025-04", 5000, seed=1, drift=0.0)
    shifted = gen.generate_month("2025-04", 5000, seed=1, drift=1.0)
    assert not base["customer_id"].equals(other["customer_id"])
    assert shifted["monthly_charges"].mean() > 1.15 * other["monthly_charges"].mean()
    assert shifted["num_support_calls"].mean() > other["num_support_calls"].mean() + 1
    assert (shifted["contract"] == "month-to-month").mean() > (other["contract"] == "month-to-month").mean()
    assert shifted["churned"].mean() > other["churned"].mean() + 0.1


def test_drift_grows_from_the_start_month():
    levels = [gen.drift_for_month(i, 0.5, drift_start=2) for i in range(5)]
    assert levels == [0, 0, 0.5, 1.0, 1.5]
    assert gen.month_range("2024-11", 3) == ["2024-11", "2024-12", "2025-01"]
    assert np.isclose(gen.drift_for_month(3, 0.0, 0), 0.0)
