"""The monitoring rules: the PrometheusRule built from the plain file, and the series they select."""

import json
import re

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from slipway.errors import SlipwayError
from slipway.monitoring import canary, rules
from slipway.serving.app import create_app
from slipway.serving.config import ServingConfig
from tests.conftest import REPO, churn_instances

HTTP_SERIES = re.compile(r"(slipway_http_request_\w+)\{([^}]*)\}")


def test_the_prometheus_rule_carries_the_rules_files_groups():
    built = yaml.safe_load(rules.render(REPO / rules.RULES))
    assert built["kind"] == "PrometheusRule"
    assert built["spec"]["groups"] == yaml.safe_load((REPO / rules.RULES).read_text())["groups"]


@pytest.mark.parametrize(("text", "error"), [
    (None, "not found (run from the repository root)"),
    ("groups: [", "not valid YAML"),
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


SCRAPE_LABELS = {"job", "track", "instance"}  # added by Prometheus and the ServiceMonitor's relabeling
SELECTION = re.compile(r"(slipway_\w+)\{([^}]*)\}")


def exported_series(bundle_dir, tmp_path) -> dict[str, set[frozenset[str]]]:
    """Sample name -> the label names of each of its samples, from a server that has predicted,
    refused a request and answered a probe."""
    client = create_app(ServingConfig(model_dir=bundle_dir, reports_dir=tmp_path)).test_client()
    assert client.post("/predict", json={"instances": churn_instances(3)}).status_code == 200
    assert client.post("/predict", json={"instances": []}).status_code == 400
    assert client.get("/readyz").status_code == 200
    series: dict[str, set[frozenset[str]]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        for sample in family.samples:
            series.setdefault(sample.name, set()).add(frozenset(sample.labels))
    return series


def test_rules_and_their_tests_use_series_the_server_exports(bundle_dir, tmp_path):
    """promtool tests feed hand-written series: each must be one the server really exports, with
    labels it has (the tests may leave some out), and every label a rule selects by must exist,
    or a rule passes its test and matches nothing in production."""
    exported = exported_series(bundle_dir, tmp_path)
    tests = yaml.safe_load((REPO / "k8s/monitoring/tests/alerts_test.yaml").read_text())["tests"]
    fed = [SELECTION.fullmatch(series["series"]) for test in tests for series in test["input_series"]]
    fed = [(m.group(1), set(re.findall(r"(\w+)=", m.group(2)))) for m in fed if m and 'job="slipway"' in m.group(2)]
    assert len(fed) >= 20
    for name, labels in fed:
        assert name in exported, f"{name} is not exported by the server"
        assert any(labels - SCRAPE_LABELS <= exported_labels for exported_labels in exported[name]), \
            f"{name} with labels {sorted(labels)}: the server exports {[sorted(e) for e in exported[name]]}"
    expressions = [rule["expr"] for group in yaml.safe_load((REPO / rules.RULES).read_text())["groups"]
                   for rule in group["rules"]]
    for name, matchers in (m for e in expressions for m in SELECTION.findall(e) if 'job="slipway"' in m[1]):
        selected = set(re.findall(r"(\w+)\s*(?:=|!=|=~|!~)", matchers)) - SCRAPE_LABELS
        assert name in exported, f"{name} is not exported by the server"
        assert any(selected <= labels for labels in exported[name]), f"{name} has no labels {selected}"
