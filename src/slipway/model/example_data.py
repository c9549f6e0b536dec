"""A seeded generator of monthly customer-churn batches, with a drift knob.

Each row is a customer observed at an event time. The label ``churned`` comes from a known
noisy logistic rule. ``drift`` shifts months from ``drift_start`` on: feature distributions move
(higher charges, more support calls, more month-to-month contracts) and the rule itself changes
(support calls and inactivity weigh more), so retraining and drift detection have something to find.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENT_METHODS = ["credit-card", "bank-transfer", "electronic-check", "mailed-check"]
INTERNET_SERVICES = ["fiber", "dsl", "none"]
REGIONS = ["north", "south", "east", "west"]
PLAN_TIERS = ["basic", "standard", "premium"]


def month_range(start: str, months: int) -> list[str]:
    """``["2025-01", "2025-02", ...]``: ``months`` consecutive months from ``start``."""
    return [str(p) for p in pd.period_range(start=start, periods=months, freq="M")]


def _choice(rng: np.random.Generator, values: list[str], weights, size: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return rng.choice(np.array(values, dtype=object), size=size, p=weights / weights.sum())


def generate_month(month: str, rows: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    """One month of customers. ``drift`` = 0 is the reference world; 1 is a strong shift."""
    period = pd.Period(month, freq="M")
    rng = np.random.default_rng([seed, period.year, period.month])

    customer_id = rng.choice(np.arange(1, 4 * rows + 1, dtype=np.int64), size=rows, replace=False)
    start = period.start_time.value
    span = period.end_time.value - start
    event_timestamp = pd.to_datetime(np.sort(start + (rng.random(rows) * span).astype(np.int64)))

    contract = _choice(rng, CONTRACTS, [0.5 + 0.3 * drift, 0.3, 0.2], rows)
    payment_method = _choice(rng, PAYMENT_METHODS, [0.3, 0.25, 0.3 + 0.2 * drift, 0.15], rows)
    internet_service = _choice(rng, INTERNET_SERVICES, [0.45, 0.4, 0.15], rows)
    region = _choice(rng, REGIONS, [0.3, 0.25, 0.25, 0.2], rows)
    plan_tier = _choice(rng, PLAN_TIERS, [0.5, 0.35, 0.15], rows)

    tenure_months = np.clip(rng.gamma(2.0, 14.0, rows), 0, 72).round().astype(np.int64)
    tier_price = pd.Series(plan_tier).map({"basic": 35.0, "standard": 65.0, "premium": 95.0})
    monthly_charges = np.clip(
        tier_price.to_numpy() * (1 + 0.25 * drift) + rng.normal(0, 8, rows), 15, 200
    ).round(2)
    total_charges = (monthly_charges * tenure_months * rng.uniform(0.9, 1.05, rows)).round(2)
    num_support_calls = rng.poisson(1.2 + 1.5 * drift, rows).astype(np.int64)
    avg_session_minutes = rng.lognormal(3.0 - 0.3 * drift, 0.5, rows).round(1)
    days_since_last_login = rng.exponential(8 + 6 * drift, rows).round().astype(float)
    # Customers who never logged in have no value here: a realistic, allowed share of nulls.
    days_since_last_login[rng.random(rows) < 0.02] = np.nan
    num_products = rng.integers(1, 6, rows).astype(np.int64)
    age = np.clip(rng.normal(45, 14, rows), 18, 90).round().astype(np.int64)
    data_usage_gb = np.clip(rng.gamma(2.0, 20.0, rows), 0, None).round(2)
    late_payments_12m = rng.poisson(0.4 + 0.4 * drift, rows).astype(np.int64)

    inactivity = np.nan_to_num(days_since_last_login, nan=30.0)
    logit = (
        -1.6
        + 1.3 * (contract == "month-to-month")
        - 0.8 * (contract == "two-year")
        - 0.035 * tenure_months
        + 0.018 * (monthly_charges - 60)
        + (0.35 + 0.3 * drift) * num_support_calls
        + (0.03 + 0.03 * drift) * inactivity
        + 0.45 * late_payments_12m
        + 0.5 * (payment_method == "electronic-check")
        + 0.3 * (internet_service == "fiber")
        - 0.25 * num_products
        - 0.01 * avg_session_minutes
    )
    noisy = logit + rng.normal(0, 0.5, rows)
    churned = (rng.random(rows) < 1 / (1 + np.exp(-noisy))).astype(np.int64)

    return pd.DataFrame(
        {
            "customer_id": customer_id,
            "event_timestamp": event_timestamp,
            "tenure_months": tenure_months,
            "monthly_charges": monthly_charges,
            "total_charges": total_charges,
            "num_support_calls": num_support_calls,
            "avg_session_minutes": avg_session_minutes,
            "days_since_last_login": days_since_last_login,
            "num_products": num_products,
            "age": age,
            "data_usage_gb": data_usage_gb,
            "late_payments_12m": late_payments_12m,
            "contract": contract.astype(str),
            "payment_method": payment_method.astype(str),
            "internet_service": internet_service.astype(str),
            "region": region.astype(str),
            "plan_tier": plan_tier.astype(str),
            "churned": churned,
        }
    )


def drift_for_month(index: int, drift: float, drift_start: int) -> float:
    """Drift grows by ``drift`` per month from the ``drift_start``-th month (0-based) on."""
    return max(0, index - drift_start + 1) * drift
