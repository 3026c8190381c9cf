"""Where a project is read: the region name, the project-list syntax (``region:project_id``), and
the endpoint of a region (the SDK's table, or ``DLI_EXPORTER_ENDPOINT`` with ``{region}`` in it).

One module decides for everyone who places a project: the settings (the configured projects and
``DLI_EXPORTER_PROBE_ALLOWED``) and ``/probe`` (its ``target`` and ``region`` parameters).
"""

from __future__ import annotations

import re

from .dli import schema

REGION_PLACEHOLDER = "{region}"
REGION = re.compile(r"[a-z0-9]{1,16}(?:-[a-z0-9]{1,16}){1,4}")  # cn-north-4, my-kualalumpur-1, ...
# A configured project: letters, digits, '-' and '_' (tests and private clouds use short ids).
PROJECT_ENTRY = re.compile(rf"(?:({REGION.pattern}):)?([A-Za-z0-9_-]{{1,64}})")
# A real project id, 32 lower-case hex digits, optionally with its region: what /probe takes.
PROJECT_ID = re.compile(r"[0-9a-f]{32}")
PROBE_ENTRY = re.compile(rf"(?:({REGION.pattern}):)?({PROJECT_ID.pattern})")


class NoEndpoint(ValueError):
    """A region DLI cannot be reached in as configured; the message says why and what to set."""


def split_entry(entry: str, pattern: re.Pattern[str] = PROJECT_ENTRY) -> tuple[str | None, str] | None:
    """(region or None, project id) of ``region:project_id`` or ``project_id``; None if malformed."""
    match = pattern.fullmatch(entry)
    return (match.group(1), match.group(2)) if match else None


def dli_endpoint(region: str, configured: str | None) -> str:
    """DLI's endpoint for a project in ``region`` (empty: not known): ``configured`` with its
    ``{region}`` replaced, else the SDK's table's. Raises :class:`NoEndpoint`."""
    if configured:
        if REGION_PLACEHOLDER in configured and not region:
            raise NoEndpoint("DLI_EXPORTER_ENDPOINT holds {region}: set a default region or give each project "
                             "as region:project_id")
        return configured.replace(REGION_PLACEHOLDER, region)
    if not region:
        raise NoEndpoint("set a region (e.g. cn-north-4) or DLI_EXPORTER_ENDPOINT")
    if region not in schema.REGIONS:
        raise NoEndpoint(f"{region} is not in the SDK's region table; set DLI_EXPORTER_ENDPOINT for it")
    return schema.api_endpoint(region)


def iam_endpoint(region: str | None, configured: str | None) -> str:
    """IAM's endpoint: ``configured``, else the region's (in the same cloud as its DLI). Raises
    :class:`NoEndpoint`."""
    if configured:
        return configured
    if not region:
        raise NoEndpoint("set a region or the IAM endpoint for password login")
    if region not in schema.REGIONS:
        raise NoEndpoint(f"{region} is not in the SDK's region table; set DLI_EXPORTER_IAM_ENDPOINT for it")
    return schema.iam_endpoint(region)
