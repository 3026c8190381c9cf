"""IAM's list of the account's projects, as the official SDK asks for it.

``GET /v3/auth/projects`` lists every project the credential may use, and needs no permission
beyond the credential's own. It is a *global* call: it names no project. Signed with an access
key it carries ``X-Domain-Id`` (and no ``X-Project-Id``), the account's id, which the SDK looks
up first with ``GET /v3/auth/domains`` (``GlobalCredentials``); with an IAM password it carries a
token scoped to the account. Both calls go through the credential's hold-back, the transport's
retries, body cap and timeouts, like every DLI call: a key refused here is held back for DLI too.
They count as calls of no project (``project_id=""``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..domain import Deadline, FoundProject
from . import schema
from .auth import AuthMethod
from .errors import Failure
from .holdback import Holdback
from .schema import PayloadError
from .transport import Call, Transport

DOMAINS_PATH = "/v3/auth/domains"
PROJECTS_PATH = "/v3/auth/projects"
DOMAINS, PROJECTS = "domains", "projects"
ID, NAME, ENABLED, IS_DOMAIN = "id", "name", "enabled", "is_domain"
ACCOUNT = ""  # the counters' project_id of a call of no project
T = TypeVar("T")


def parse_domain(payload: Any) -> str:
    """The account's id: the first (the only) domain of a ``/v3/auth/domains`` answer."""
    domains = payload.get(DOMAINS) if isinstance(payload, dict) else None
    if not isinstance(domains, list) or not domains:
        raise PayloadError(f"the answer has no {DOMAINS}")
    first = domains[0]
    domain_id = schema.to_label(first.get(ID)) if isinstance(first, dict) else None
    if not domain_id:
        raise PayloadError(f"{DOMAINS}[0] has no {ID}")
    return domain_id


def parse_projects(payload: Any) -> list[FoundProject]:
    """The projects of a ``/v3/auth/projects`` answer. An entry without an id or a name is no
    project anyone can read, and is passed over; a missing ``enabled`` is taken as enabled (the
    readability check then tells)."""
    projects = payload.get(PROJECTS) if isinstance(payload, dict) else None
    if not isinstance(projects, list):
        raise PayloadError(f"the answer has no list of {PROJECTS}")
    found = []
    for entry in projects:
        if not isinstance(entry, dict):
            continue
        project_id, name = schema.to_label(entry.get(ID)), schema.to_label(entry.get(NAME))
        if not project_id or not name:
            continue
        enabled = schema.to_bool(entry.get(ENABLED))
        found.append(FoundProject(project_id, name, enabled is not False, schema.to_bool(entry.get(IS_DOMAIN)) is True))
    return found


class Iam:
    """Looks up the account's projects at IAM's ``base`` URL with the process's credential."""

    def __init__(self, base: str, *, transport: Transport, auth: AuthMethod, holdback: Holdback) -> None:
        self._base = base.rstrip("/")
        self._transport = transport
        self._auth = auth
        self._holdback = holdback
        self._lock = threading.Lock()
        self._domain_id: str | None = None  # looked up once: an account's id does not change

    def __repr__(self) -> str:
        return f"Iam({self._base})"

    @property
    def base(self) -> str:
        return self._base

    def projects(self, deadline: Deadline) -> list[FoundProject] | Failure:
        """Every project the credential may use, or why they could not be listed."""
        headers: dict[str, str] = {}
        if self._auth.needs_domain_id:
            domain_id = self._domain(deadline)
            if isinstance(domain_id, Failure):
                return domain_id
            headers[schema.DOMAIN_HEADER] = domain_id
        return self._get(PROJECTS_PATH, headers, deadline, parse_projects)

    def _domain(self, deadline: Deadline) -> str | Failure:
        with self._lock:
            if self._domain_id is not None:
                return self._domain_id
        got = self._get(DOMAINS_PATH, {}, deadline, parse_domain)
        if not isinstance(got, Failure):
            with self._lock:
                self._domain_id = got
        return got

    def _get(self, path: str, headers: dict[str, str], deadline: Deadline, parse: Callable[[Any], T]) -> T | Failure:
        call = Call.get(self._base + path, ACCOUNT, headers)
        authorizer = self._auth.global_authorizer()
        return self._holdback.call(deadline, ACCOUNT, lambda: self._transport.fetch(call, authorizer, deadline, parse))
