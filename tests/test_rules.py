"""The PrometheusRule built from the plain rules file."""

import re

import pytest
import yaml

from slipway.errors import SlipwayError
from slipway.monitoring import rules
from tests.conftest import REPO


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
