"""What a call's failure means: the outcome classes, the one function that classifies an answer,
and :class:`Failure`, the value a call that gave no usable answer returns, with the API's code,
message and request id, and when a throttled credential may call again.

Failures are values, not exceptions: the transport returns one, the hold-back learns from it, the
reader reports it. A failure's text is what users read in the log and in ``--check``: the API's
message, code and request id are quoted in it as one printable line, and cut short, whatever the
API sent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ..logs import one_line
from . import schema

MAX_ERROR_TEXT = 300  # characters of an API error message quoted in our own
MAX_ID_TEXT = 100  # characters of an API error code or request id quoted in our own


class Outcome(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    AUTH = "auth"  # the credential itself was refused: what the gateway counts towards locking a key
    DENIED = "denied"  # the credential was accepted, but may not read this (403): that list of that project alone
    FATAL = "fatal"
    HELD = "held"  # not sent: the credential is held back (see holdback)


def classify(status: int | None, error_code: str = "", *, decoded: bool = True, parsed: bool = True) -> Outcome:
    """What an answer means for the caller; the one place that decides.

    ``status`` is None when no answer came; ``decoded`` says whether its body was JSON, ``parsed``
    whether that JSON held what was asked for; ``error_code`` is the API's, from the body."""
    if status is None or (status == 200 and not decoded):
        return Outcome.RETRY  # no answer, or one cut short: the next may arrive whole
    if status == 401 or error_code in schema.AUTH_CODES:
        return Outcome.AUTH
    if status == 403:
        return Outcome.DENIED
    if status == 429 or status >= 500 or error_code in schema.RETRYABLE_CODES:
        return Outcome.RETRY
    if status == 200 and parsed and not error_code:
        return Outcome.OK
    return Outcome.FATAL


def _quoted(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


@dataclass(frozen=True)
class Failure:
    """A call (or a read) that gave no usable answer, after retries where they apply."""

    outcome: Outcome
    message: str
    status: int | None = None
    error_code: str = ""
    request_id: str = ""
    retry_after: float | None = None  # seconds a 429's Retry-After asked for
    resume_at: float | None = None  # clock(): when a throttled credential may call again
    logged: bool = False  # already logged where it was handled (the hold-back's one line per hold)

    @property
    def throttled(self) -> bool:
        return self.status == 429

    def __str__(self) -> str:
        parts = []
        if self.outcome is Outcome.AUTH:
            parts.append("authentication failed:")
        elif self.outcome is Outcome.DENIED:
            parts.append("permission denied:")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error_code:
            parts.append(_quoted(self.error_code, MAX_ID_TEXT))
        head = " ".join(parts)
        message = _quoted(self.message, MAX_ERROR_TEXT)  # an API's message is quoted, not carried whole
        text = f"{head}: {message}" if head else message
        if self.request_id:
            text += f" (request_id={_quoted(self.request_id, MAX_ID_TEXT)})"
        # The API's text reaches logs, --check and errors from here: one line, nothing a terminal
        # would act on.
        return one_line(text)

    def log_fields(self) -> dict[str, str | int]:
        """The failure as log fields, for queries: each one escaped by the log's formatter."""
        return {"error": str(self), "status": self.status or "", "error_code": _quoted(self.error_code, MAX_ID_TEXT),
                "request_id": _quoted(self.request_id, MAX_ID_TEXT)}


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from ``now`` (epoch seconds): a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
