"""``/probe?target=<project_id>[&region=<region>]``: one project on demand, the multi-target
pattern of blackbox_exporter and snmp_exporter. Prometheus holds the target list (and can shard
it); the exporter sweeps what it is asked for, with the same credential, resources,
single-flight, cache and deadline as ``/metrics``.

Parameters are checked before anything is swept: ``target`` must be a project id (32 lower-case
hex digits) and ``region`` a region name with an endpoint (of the SDK's table, unless one is
configured: :func:`exporter.regions.dli_endpoint` decides, as for configured projects). With
``DLI_EXPORTER_PROBE_ALLOWED`` set, a project outside it is refused: otherwise an open port would
let anyone spend the account's API quota. Refusals never echo the raw input.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from .domain import Target
from .regions import PROJECT_ID, REGION, NoEndpoint
from .settings import Settings

MAX_QUERY = 512  # bytes of query string worth reading: a target and a region are far shorter


class ProbeRefused(Exception):
    """A probe that is not swept: ``status`` (400 or 403) and a short reason without the input."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Probes:
    """Turns a ``/probe`` query into the target it names."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._allowed = settings.probe_allowlist

    def __repr__(self) -> str:
        return f"Probes(allowed={len(self._allowed) or 'any'})"

    def target(self, query: str) -> Target:
        """The target ``query`` names; ProbeRefused when it may not be swept."""
        if len(query) > MAX_QUERY:
            raise ProbeRefused(400, "query string too long")
        try:
            params = parse_qs(query, strict_parsing=bool(query), max_num_fields=8)
        except ValueError:
            raise ProbeRefused(400, "malformed query string") from None
        if set(params) - {"target", "region"} or any(len(values) != 1 for values in params.values()):
            raise ProbeRefused(400, "expected target=<project id> and optionally region=<region>, once each")
        project_id = params.get("target", [""])[0]
        if not PROJECT_ID.fullmatch(project_id):
            raise ProbeRefused(400, "target must be a project id: 32 lower-case hex digits")
        region = params.get("region", [self._settings.effective_region or ""])[0]
        if region and not REGION.fullmatch(region):
            raise ProbeRefused(400, "region must be a region name such as cn-north-4")
        try:
            target = self._settings.target(project_id, region)
        except NoEndpoint:
            if not region:
                raise ProbeRefused(400, "region is required (no DLI_EXPORTER_REGION is set)") from None
            raise ProbeRefused(400, "region is not in the SDK's region table") from None
        if self._allowed and (None, project_id) not in self._allowed and (region, project_id) not in self._allowed:
            raise ProbeRefused(403, "target not in DLI_EXPORTER_PROBE_ALLOWED")
        return target
