"""The shipped Grafana dashboard and Prometheus alert rules only name metrics the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import gateway.metrics  # noqa: F401 - registers the metrics

DEPLOY = Path(__file__).parent.parent.parent / "deploy"


def exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum"))
    return names


def test_dashboard_and_alerts_name_only_exported_metrics() -> None:
    """Every w2c_* name in deploy/ is a metric of gateway.metrics (a rename cannot break a panel silently)."""
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = (DEPLOY / "prometheus-alerts.yml").read_text()
    named = set(re.findall(r"\bw2c_[a-z_]+", " ".join(exprs) + alerts))
    assert named, "the files name metrics"
    assert set() == named - exported()
