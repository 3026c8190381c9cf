"""The exporter's vocabulary: jobs, pages, targets, views, scrapes, sweep results and snapshots.

Plain values that every layer passes around. This module imports nothing of the exporter's own,
so the layers above it (the DLI side, the sweeper, the metrics, the HTTP side) can all depend on
it without depending on each other. Upstream field names do not appear here (only the contract's
label names, which some of them equal): the DLI schema module turns answers into these types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

UNKNOWN_STATUS = "unknown"  # the contract's status label for a job the API gives no status for


# Not frozen: a frozen dataclass costs three times as much to build here (every field goes through
# object.__setattr__), and jobs are built once per job per sweep. Only the view merge changes a
# job, a summary job of its own sweep before anyone else sees it (exporter.views.merge).
@dataclass(slots=True)
class JobConfig:
    compute_units: int | None
    parallelism: int | None
    checkpoints: bool | None  # automatic checkpoints enabled; None when the API does not say
    auto_restart: bool | None  # restarts on exceptions; None when the API does not say


@dataclass(slots=True)
class Job:
    job_id: int
    name: str
    job_type: str
    status: str
    queue: str
    run_mode: str
    user_name: str
    create_time_ms: int | None
    start_time_ms: int | None  # None when the job never started
    duration_ms: int | None
    restarts: int | None
    savepoint: bool | None  # the job has a savepoint; None when the API does not say
    config: JobConfig | None


@dataclass(slots=True)
class Page:
    total_count: int | None
    jobs: list[Job]
    raw_count: int  # entries in the answer: a full page means more may follow


class View(enum.Enum):
    """Which of the list API's two views a sweep reads (the API splits job fields between them)."""

    SUMMARY = "summary"
    DETAIL = "detail"


@dataclass(frozen=True)
class Credential:
    """Which credential signs a target's calls: its kind and the public half of it (an access key,
    or an IAM user). The secret half lives with the credentials module, never here."""

    kind: str  # "aksk" or "iam"
    identity: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credential({self.kind}:{self.identity[:4]}...)"


@dataclass(frozen=True)
class Target:
    """The unit of work: one project, read at one endpoint with one credential."""

    project_id: str
    endpoint: str
    credential: Credential
    region: str = ""  # the project's region, where known (an endpoint given outright may not say)


@dataclass(frozen=True)
class ScrapeRequest:
    """One scrape: when its sweep must be done (``time.monotonic()``), and the timeout it announced."""

    deadline: float
    timeout: float


@dataclass(frozen=True)
class ProjectResult:
    """The outcome of one project's sweep. ``jobs`` is None when any page could not be read."""

    project_id: str
    jobs: list[Job] | None
    error: str | None
    duration: float
    finished_at: float  # epoch seconds
    pages: int = 0
    total_count: int | None = None
    detail_at: float | None = None  # epoch seconds: when the detail view merged in was read

    @property
    def ok(self) -> bool:
        return self.jobs is not None

    @classmethod
    def down(cls, project_id: str, error: str, duration: float, finished_at: float) -> ProjectResult:
        """A project that could not be read: no jobs at all, never a partial list."""
        return cls(project_id, None, error, duration, finished_at)


@dataclass(frozen=True)
class Snapshot:
    """What one scrape reports: each project's latest result and when it last fully succeeded."""

    results: dict[str, ProjectResult]
    last_success: dict[str, float] = field(default_factory=dict)  # epoch seconds
