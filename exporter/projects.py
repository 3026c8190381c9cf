"""Which projects, where: the project-list syntax (``region:project_id``), endpoints per region
(``{region}`` in an endpoint), and what ``/probe`` accepts.

Shared by the settings (the configured projects and ``DLI_EXPORTER_PROBE_ALLOWED``) and the
``/probe`` route (its ``target`` and ``region`` parameters), so both read projects one way.
"""

from __future__ import annotations

import re

REGION_PLACEHOLDER = "{region}"
REGION = re.compile(r"[a-z0-9]{1,16}(?:-[a-z0-9]{1,16}){1,4}")
# A configured project: letters, digits, '-' and '_' (tests and private clouds use short ids).
PROJECT_ENTRY = re.compile(rf"(?:({REGION.pattern}):)?([A-Za-z0-9_-]{{1,64}})")
# What /probe takes: a real project id, 32 lower-case hex digits, optionally with its region.
PROBE_PROJECT = re.compile(r"[0-9a-f]{32}")
PROBE_ENTRY = re.compile(rf"(?:({REGION.pattern}):)?({PROBE_PROJECT.pattern})")


def split_entry(entry: str, pattern: re.Pattern[str] = PROJECT_ENTRY) -> tuple[str | None, str] | None:
    """(region or None, project id) of ``region:project_id`` or ``project_id``; None if malformed."""
    match = pattern.fullmatch(entry)
    return (match.group(1), match.group(2)) if match else None


def endpoint_for(endpoint: str, region: str) -> str:
    """An endpoint given outright, its ``{region}`` (if any) replaced."""
    return endpoint.replace(REGION_PLACEHOLDER, region)
