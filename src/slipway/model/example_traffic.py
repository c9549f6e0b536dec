"""Traffic for a server of the example model, and the outcomes that follow it.

The monitoring loop reads what servers log and what becomes known later; on a laptop there is
neither. This sends one month of example customers (``generate_month``, the drift knob included)
to a running server's ``/predict`` with their ids, and returns each customer's outcome stamped with
the time its prediction was asked for: the labels ``slipway performance`` joins to the log.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pandas as pd

from slipway.errors import SlipwayError
from slipway.model.example_data import generate_month

ID, TIME, TARGET = "customer_id", "event_timestamp", "churned"


def customers(month: str, rows: int, seed: int, drift: float) -> tuple[list[dict], pd.Series, pd.Series]:
    """One month of customers as ``/predict`` instances (the id beside the inputs, null where a
    value is missing), and their ids and outcomes."""
    frame = generate_month(month, rows, seed, drift)
    inputs = frame.drop(columns=[TIME, TARGET]).astype(object)
    instances = inputs.where(inputs.notna(), None).to_dict("records")
    return instances, frame[ID], frame[TARGET]


def send(url: str, instances: list[dict], batch_size: int, timeout: float = 30.0) -> list[float]:
    """Each instance sent to ``url``'s ``/predict``, ``batch_size`` to a request; the time (epoch
    seconds) each was sent. A refusal or no answer stops it, naming what the server said."""
    sent_at: list[float] = []
    for start in range(0, len(instances), batch_size):
        batch = instances[start:start + batch_size]
        request = urllib.request.Request(f"{url}/predict", data=json.dumps({"instances": batch}).encode(),
                                         headers={"Content-Type": "application/json"})
        now = time.time()
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
        except urllib.error.HTTPError as exc:
            raise SlipwayError(f"{url}/predict answered {exc.code} to instances {start}-{start + len(batch) - 1}: "
                               f"{exc.read().decode(errors='replace')[:300]}") from None
        except OSError as exc:
            raise SlipwayError(f"no answer from {url} ({getattr(exc, 'reason', exc)}): is the server running "
                               "(make serve)?") from None
        sent_at += [now] * len(batch)
    return sent_at


def outcomes(ids: pd.Series, churned: pd.Series, sent_at: list[float]) -> pd.DataFrame:
    """The labels file's rows: each customer's id, the time its prediction was asked for (UTC), outcome."""
    times = pd.to_datetime(pd.Series(sent_at), unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return pd.DataFrame({ID: ids.to_numpy(), TIME: times.to_numpy(), TARGET: churned.to_numpy()})
