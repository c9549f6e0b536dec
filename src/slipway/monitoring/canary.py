"""Canary analysis: the canary against stable in Prometheus, over one window, for promotion.

Verdicts: ``pass``; ``fail`` (errors, refusals, p95 latency, the score distribution or the
predicted classes differ beyond ``params.yaml``'s ``canary`` limits); ``inconclusive`` (too little
canary traffic to say).
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import urllib.request
from typing import Any

from slipway.errors import ParamsError, SlipwayError
from slipway.monitoring import verdicts
from slipway.monitoring.verdicts import FAIL, INCONCLUSIVE, PASS
from slipway.params import lookup

JOB = 'job="slipway"'
# Prediction traffic: what clients send. Kubelet probes (about 180 per pod in 10 minutes), model
# metadata and the model card are not traffic: counted, they would make an idle canary look busy
# and water down its error ratio. Requests are counted by the latency histogram's _count, since
# prometheus-flask-exporter's request counter has no endpoint label. k8s/monitoring (rules,
# dashboard) selects the same series.
PREDICTIONS = JOB + ', endpoint=~"api\\\\.(predict|v2_infer)"'
REQUESTS = "slipway_http_request_duration_seconds_count"


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str) -> list[dict]:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except OSError as exc:
            raise SlipwayError(f"Prometheus at {self.url}: {exc}") from None
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            raise SlipwayError(f"Prometheus query failed: {body.get('error')}: {promql}")
        result = body.get("data") if isinstance(body, dict) and body.get("status") == "success" else None
        if not isinstance(result, dict) or not isinstance(result.get("result"), list):
            raise SlipwayError(f"Prometheus at {self.url}: the answer is not Prometheus API JSON; is "
                               "this a Prometheus server's address?")
        return result["result"]

    def by_track(self, promql: str) -> dict[str, float]:
        out = {}
        for sample in self.query(promql):
            value = float(sample["value"][1])
            out[sample["metric"].get("track", "")] = value
        return out

    def by_track_and(self, label: str, promql: str) -> dict[str, dict[str, float]]:
        """Track -> value of ``label`` -> sample, for a query that sums ``by (track, <label>)``."""
        out: dict[str, dict[str, float]] = {}
        for sample in self.query(promql):
            out.setdefault(sample["metric"].get("track", ""), {})[sample["metric"].get(label, "")] = \
                float(sample["value"][1])
        return out


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def score_ks(client: PrometheusClient, window: str) -> float | None:
    """Largest gap between the canary's and stable's cumulative score distributions."""
    cdf = {track: {float(le): n for le, n in buckets.items()} for track, buckets in client.by_track_and(
        "le", f"sum by (track, le) (increase(slipway_prediction_score_bucket{{{JOB}}}[{window}]))").items()}
    if not {"canary", "stable"} <= cdf.keys():
        return None
    totals = {track: buckets.get(math.inf, max(buckets.values())) for track, buckets in cdf.items()}
    if min(totals["canary"], totals["stable"]) <= 0:
        return None
    edges = sorted(set(cdf["canary"]) & set(cdf["stable"]))
    return max(abs(cdf["canary"][le] / totals["canary"] - cdf["stable"][le] / totals["stable"]) for le in edges)


def rejection_reasons(client: PrometheusClient, window: str) -> str:
    """The canary's refusals by reason, most first: what the reviewers need to tell a schema change
    (``missing_feature``, ``unknown_feature``, ``unseen_category``) from a client's bad input."""
    counts = {sample["metric"].get("reason", ""): float(sample["value"][1]) for sample in client.query(
        f'sum by (reason) (increase(slipway_rejected_requests_total{{{JOB}, track="canary"}}[{window}]))')}
    shown = sorted(((n, reason) for reason, n in counts.items() if n > 0), reverse=True)[:3]
    return ", ".join(f"{reason} {n:.0f}" for n, reason in shown) or "none counted"


def class_shift(client: PrometheusClient, window: str) -> float | None:
    """Total variation distance between the canary's and stable's shares of predictions per class:
    the share of predictions that would have to change class to make them alike. A multiclass score
    is the top probability, which a model that moves predictions between classes with the same
    confidence leaves alike; the class counts do not."""
    counts = client.by_track_and(
        "class", f"sum by (track, class) (increase(slipway_predictions_total{{{JOB}}}[{window}]))")
    totals = {track: sum(by_class.values()) for track, by_class in counts.items()}
    if not {"canary", "stable"} <= counts.keys() or min(totals["canary"], totals["stable"]) <= 0:
        return None
    share = {track: {c: n / totals[track] for c, n in counts[track].items()} for track in ("canary", "stable")}
    classes = set(share["canary"]) | set(share["stable"])
    return 0.5 * sum(abs(share["canary"].get(c, 0.0) - share["stable"].get(c, 0.0)) for c in classes)


# Each limit's range: a ratio or a KS distance above 1 could never fail, a negative one never pass;
# an error ratio needs requests on both tracks (0 let a track with none through, to a division by zero).
LIMIT_RANGES = {"min_requests": (1, None), "max_error_ratio": (0, 1), "max_error_ratio_increase": (0, 1),
                "max_rejection_ratio_increase": (0, 1), "max_latency_p95_ratio": (0, None),
                "min_latency_p95_seconds": (0, None), "max_score_ks": (0, 1), "max_class_shift": (0, 1)}
# A Prometheus duration: 10m, 1h30m, 90s.
DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")


def analyse(client: PrometheusClient, params: dict[str, Any]) -> dict[str, Any]:
    window = lookup(params, "canary.window", str)
    if not DURATION.fullmatch(window):
        raise ParamsError(f"params: canary.window must be a Prometheus duration such as 10m or 1h30m, got {window!r}")
    limits = {key: lookup(params, f"canary.{key}", (int, float), minimum=low, maximum=high)
              for key, (low, high) in LIMIT_RANGES.items()}
    requests = client.by_track(f"sum by (track) (increase({REQUESTS}{{{PREDICTIONS}}}[{window}]))")
    versions = {s["metric"].get("track"): s["metric"].get("model_version")
                for s in client.query(f"max by (track, model_version) (slipway_model_info{{{JOB}}})")}
    checks = []

    def check(name: str, value, threshold, ok: bool, detail: str, limit: str) -> None:
        """``limit``: the bound in words, with the ``params.yaml`` keys that set it, for the reviewers."""
        checks.append({"check": name, "value": value, "threshold": threshold,
                       "verdict": PASS if ok else FAIL, "detail": detail, "limit": limit})

    canary_requests = requests.get("canary", 0.0)
    result = {"window": window, "canary_version": versions.get("canary"),
              "stable_version": versions.get("stable"),
              "requests": {"canary": round(canary_requests, 3), "stable": round(requests.get("stable", 0.0), 3)},
              "checks": checks}
    # Right after a rollout the window holds the previous model's traffic too: judging the new
    # canary by it would pass a model on another model's record.
    served: dict[str, set[str]] = {}
    models_in_window = f"count by (track, model_version) (count_over_time(slipway_model_info{{{JOB}}}[{window}]))"
    for sample in client.query(models_in_window):
        served.setdefault(sample["metric"].get("track", ""), set()).add(sample["metric"].get("model_version", ""))
    mixed = {track: sorted(models) for track, models in sorted(served.items()) if len(models) > 1}
    if mixed:
        result["verdict"] = INCONCLUSIVE
        result["reason"] = ("; ".join(f"{track} ran models {', '.join(models)}" for track, models in mixed.items())
                            + f" within {window}: analyse again once each track has run one model for a whole window")
        return result
    if canary_requests < limits["min_requests"] or requests.get("stable", 0.0) < limits["min_requests"]:
        result["verdict"] = INCONCLUSIVE
        result["reason"] = (f"too little traffic in {window}: canary {canary_requests:.0f}, stable "
                            f"{requests.get('stable', 0.0):.0f} requests (need {limits['min_requests']:g} each)")
        return result

    def share(status: str) -> dict[str, float]:
        """Each track's share of prediction requests answered with ``status`` (a regex). At most 1:
        the two queries run at two instants, and increase() extrapolates each to the window."""
        answered = client.by_track(
            f'sum by (track) (increase({REQUESTS}{{{PREDICTIONS}, status=~"{status}"}}[{window}]))')
        return {t: min(1.0, answered.get(t, 0.0) / requests[t]) for t in ("canary", "stable")}

    ratio = share("5..")
    check("error_ratio", round(ratio["canary"], 6), limits["max_error_ratio"],
          ratio["canary"] <= limits["max_error_ratio"]
          and ratio["canary"] <= ratio["stable"] + limits["max_error_ratio_increase"],
          f"canary {ratio['canary']:.4f} vs stable {ratio['stable']:.4f}",
          f"<= {limits['max_error_ratio']:g} and <= stable's + {limits['max_error_ratio_increase']:g} "
          "(canary.max_error_ratio, canary.max_error_ratio_increase)")
    # Refusals are 4xx, not errors, and bad clients send to both tracks alike: only the canary
    # refusing more than stable is the model's doing. A model that needs an input clients do not
    # send, drops one they do, or has fewer categories would refuse their requests, with no 5xx,
    # fast, and with too few scores for the score check to notice when only some clients break.
    refused = share("4..")
    increase = limits["max_rejection_ratio_increase"]
    more = refused["canary"] > refused["stable"] + increase
    check("rejection_ratio", round(refused["canary"], 6), increase, not more,
          f"canary {refused['canary']:.4f} vs stable {refused['stable']:.4f}"
          + (f"; the canary's reasons: {rejection_reasons(client, window)}" if more else ""),
          f"<= stable's + {increase:g} (canary.max_rejection_ratio_increase)")
    p95 = client.by_track(
        f'histogram_quantile(0.95, sum by (track, le) (rate(slipway_http_request_duration_seconds_bucket'
        f'{{{PREDICTIONS}}}[{window}])))')
    latency = {t: _finite(p95.get(t)) for t in ("canary", "stable")}
    latency_limit = (f"<= {limits['max_latency_p95_ratio']:g}x stable's, unless under "
                     f"{limits['min_latency_p95_seconds']:g} s (canary.max_latency_p95_ratio, "
                     "canary.min_latency_p95_seconds)")
    if latency["canary"] is None or latency["stable"] is None:
        check("latency_p95", None, limits["max_latency_p95_ratio"], False, "no latency data for a track", latency_limit)
    else:
        slow = (latency["canary"] > limits["max_latency_p95_ratio"] * latency["stable"]
                and latency["canary"] > limits["min_latency_p95_seconds"])
        check("latency_p95", round(latency["canary"], 6), limits["max_latency_p95_ratio"], not slow,
              f"canary {latency['canary'] * 1000:.1f} ms vs stable {latency['stable'] * 1000:.1f} ms", latency_limit)
    ks = score_ks(client, window)
    check("score_ks", None if ks is None else round(ks, 6), limits["max_score_ks"],
          ks is not None and ks <= limits["max_score_ks"],
          "no score data for a track" if ks is None else f"max CDF gap {ks:.3f}",
          f"<= {limits['max_score_ks']:g} (canary.max_score_ks)")
    shift = class_shift(client, window)
    check("class_shift", None if shift is None else round(shift, 6), limits["max_class_shift"],
          shift is not None and shift <= limits["max_class_shift"],
          "no prediction data for a track" if shift is None else f"{shift:.3f} of predictions in another class",
          f"<= {limits['max_class_shift']:g} (canary.max_class_shift)")
    result["verdict"] = PASS if all(c["verdict"] == PASS for c in checks) else FAIL
    return result


def markdown(result: dict[str, Any]) -> str:
    return verdicts.markdown(
        "Canary analysis", result["verdict"],
        f"Canary `{result['canary_version']}` vs stable `{result['stable_version']}` over "
        f"{result['window']}: {result['requests']['canary']:.0f} canary and "
        f"{result['requests']['stable']:.0f} stable requests.",
        result.get("reason"), ["check", "verdict", "detail", "limit"],
        [[c["check"], c["verdict"], c["detail"], c["limit"]] for c in result["checks"]])
