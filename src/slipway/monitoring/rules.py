"""The PrometheusRule object, built from the plain rules file promtool checks and tests.

    slipway monitoring-rules   (rewrites k8s/monitoring/prometheusrule.yaml)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from slipway.errors import SlipwayError
from slipway.params import read_yaml

RULES = Path("k8s/monitoring/rules.yaml")
PROMETHEUS_RULE = Path("k8s/monitoring/prometheusrule.yaml")
HEADER = "# Generated from rules.yaml by `slipway monitoring-rules`; edit rules.yaml, not this file.\n"


def prometheus_rule(rules_file: Path = RULES) -> dict:
    document = read_yaml(rules_file, SlipwayError)
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not groups:
        raise SlipwayError(f"{rules_file}: not a Prometheus rules file (a mapping with a list of groups)")
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "slipway", "labels": {"app.kubernetes.io/name": "slipway",
                                                   "prometheus": "k8s", "role": "alert-rules"}},
        "spec": {"groups": groups},
    }


class _BlockStyleDumper(yaml.SafeDumper):
    """Multi-line PromQL stays readable: block literals, as in rules.yaml."""


_BlockStyleDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                                       style="|" if "\n" in value else None))


def render(rules_file: Path = RULES) -> str:
    return HEADER + yaml.dump(prometheus_rule(rules_file), Dumper=_BlockStyleDumper, sort_keys=False, width=200)
