"""Validate Prometheus Operator objects against the operator's own CRD schemas, strictly.

    python -m tests.operator_schema FILE... | -

The schemas are cloudcoil's models, generated from the operator's CRDs (test-only dependency).
They ignore unknown fields by default, which would pass ``intervall: 30s``, and take their Python
names beside the real ones; here every model forbids both, set on the base class before the
models are built. That is a change to the library's classes for the whole process, so it runs as
a process of its own. Documents of other
groups are counted and left alone. Prints one line per object; exit code 1 if any is invalid.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cloudcoil.pydantic
import pydantic
import yaml

# Before the models are imported: unknown fields are errors, and fields go by their Kubernetes
# names only (cloudcoil also takes its Python names, so `target_label` would pass for `targetLabel`).
cloudcoil.pydantic.BaseModel.model_config.update(extra="forbid", populate_by_name=False)

from cloudcoil.models.prometheus_operator import v1, v1alpha1  # noqa: E402

GROUP = "monitoring.coreos.com"
KINDS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    (f"{GROUP}/{model.__module__.rsplit('.', 1)[1]}", model.__name__): model
    for model in (v1.PrometheusRule, v1.ServiceMonitor, v1.PodMonitor, v1.Probe, v1alpha1.ScrapeConfig)
}


def validate(doc: dict[str, Any]) -> str | None:
    """None if ``doc`` passes, else the errors on one line."""
    model = KINDS.get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if model is None:
        return f"no schema here for {doc.get('apiVersion')} {doc.get('kind')}"
    try:
        model.model_validate(doc)
    except pydantic.ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return None


def main(argv: list[str]) -> int:
    texts = [sys.stdin.read()] if argv == ["-"] else [Path(name).read_text() for name in argv]
    bad = checked = 0
    for text in texts:
        for doc in yaml.safe_load_all(text):
            if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith(GROUP + "/"):
                continue
            checked += 1
            error = validate(doc)
            name = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
            print(f"{name}: {'ok' if error is None else 'INVALID: ' + error}")
            bad += error is not None
    print(f"{checked} {GROUP} objects, {bad} invalid")
    return 1 if bad or not checked else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
