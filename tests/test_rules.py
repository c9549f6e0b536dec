"""The PrometheusRule built from the plain rules file."""

import json
import re

import pytest
import yaml

from slipway.errors import SlipwayError
from slipway.monitoring import canary, rules
from tests.conftest import REPO

HTTP_SERIES = re.compile(r"(slipway_http_request_\w+)\{([^}]*)\}")


def test_the_prometheus_rule_carries_the_rules_files_groups():
    built = yaml.safe_load(rules.render(REPO / rules.RULES))
    assert built["kind"] == "PrometheusRule"
    assert built["spec"]["groups"] == yaml.safe_load((REPO / rules.RULES).read_text())["groups"]


@pytest.mark.parametrize(("text", "error"), [
    (None, "not found (run from the repository root)"),
    (": :", "not valid YAML"),
    ("- a", "not a Prometheus rules file (a mapping with a list of groups)"),
    ("groups: []", "not a Prometheus rules file (a mapping with a list of groups)"),
])
def test_a_rules_file_that_is_not_one_is_named(tmp_path, text, error):
    path = tmp_path / "rules.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SlipwayError, match=rf"^{re.escape(f'{path}: {error}')}"):
        rules.prometheus_rule(path)


def test_rules_dashboard_and_canary_analysis_count_the_same_prediction_requests():
    """Every selection of the HTTP series starts with canary analysis's selector: an alert, a
    panel and a promotion all judge the same requests, probes left out."""
    expressions = [rule["expr"] for group in yaml.safe_load((REPO / rules.RULES).read_text())["groups"]
                   for rule in group["rules"]]
    dashboard = json.loads((REPO / "k8s/monitoring/dashboard.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    selections = [selection for expression in expressions for selection in HTTP_SERIES.findall(expression)]
    assert len(selections) >= 15
    assert [s for _, s in selections if not s.startswith(canary.PREDICTIONS)] == []
    # prometheus-flask-exporter's slipway_http_request_total has no endpoint label to select by.
    assert {series for series, _ in selections} == {"slipway_http_request_duration_seconds_count",
                                                    "slipway_http_request_duration_seconds_bucket"}
