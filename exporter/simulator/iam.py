"""IAM as the simulator plays it: the account (its domain) and the account's projects.

``GET /v3/auth/domains`` and ``GET /v3/auth/projects`` answer as Huawei's IAM documents them
(``KeystoneListAuthDomains``, ``KeystoneListAuthProjects``), and are no kinder: signed with an
access key, the project list must carry the account's ``X-Domain-Id`` (the SDK looks it up first
with the domain list); with a token, the token must be scoped to the account, not to a project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DOMAINS_PATH = "/v3/auth/domains"
PROJECTS_PATH = "/v3/auth/projects"
PATHS = (DOMAINS_PATH, PROJECTS_PATH)
DEMO_DOMAIN_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
DEMO_DOMAIN_NAME = "demo-account"


def project(project_id: str, name: str, *, enabled: bool = True, parent_id: str | None = None,
            domain_id: str = DEMO_DOMAIN_ID) -> dict[str, Any]:
    """A project as ``/v3/auth/projects`` lists it."""
    return {"id": project_id, "name": name, "domain_id": domain_id, "enabled": enabled,
            "parent_id": parent_id or domain_id, "is_domain": False, "description": "",
            "links": {"self": f"https://iam.myhuaweicloud.com/v3/projects/{project_id}"}}


@dataclass
class Account:
    """The account the simulator's credentials belong to, and its projects as IAM lists them."""

    projects: list[dict[str, Any]] = field(default_factory=list)
    domain_id: str = DEMO_DOMAIN_ID
    domain_name: str = DEMO_DOMAIN_NAME

    @classmethod
    def of(cls, project_ids: list[str], regions: dict[str, str], default_region: str = "cn-north-4") -> Account:
        """Each project of the simulator, named after its region (a region's own project)."""
        return cls([project(pid, regions.get(pid, default_region)) for pid in project_ids])

    def answer(self, path: str, headers: dict[str, str], *, signed: bool) -> tuple[int, dict[str, Any]]:
        """The answer to an authenticated GET of ``path`` (one of :data:`PATHS`); ``signed``: with
        an access-key signature (else an account-scoped token)."""
        if path == DOMAINS_PATH:
            return 200, {"domains": [{"id": self.domain_id, "name": self.domain_name, "enabled": True,
                                      "description": ""}]}
        if signed and headers.get("x-domain-id") != self.domain_id:
            return 400, {"error_code": "IAM.0009", "error_msg": "X-Domain-Id is missing or not this account's."}
        return 200, {"projects": [dict(p) for p in self.projects],
                     "links": {"self": "https://iam.myhuaweicloud.com/v3/auth/projects"}}
