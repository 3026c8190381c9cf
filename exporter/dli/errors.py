"""What a call's failure means: the outcome classes, the one function that classifies an answer,
and the error that carries it, with the API's code, message and request id for the log.

An error's text is what users read in the log and in ``--check``: the API's message is quoted in
it as one printable line, and cut short, whatever the API sent.
"""

from __future__ import annotations

import enum
from email.utils import parsedate_to_datetime

from ..logs import one_line
from . import schema

MAX_ERROR_TEXT = 300  # characters of an API error message quoted in our own

class Outcome(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    AUTH = "auth"
    FATAL = "fatal"
    HELD = "held"  # not sent: the credential is held back (see holdback)


def classify(status: int | None, error_code: str = "", *, decoded: bool = True, parsed: bool = True) -> Outcome:
    """What an answer means for the caller; the one place that decides.

    ``status`` is None when no answer came; ``decoded`` says whether its body was JSON, ``parsed``
    whether that JSON held what was asked for; ``error_code`` is the API's, from the body."""
    if status is None or (status == 200 and not decoded):
        return Outcome.RETRY  # no answer, or one cut short: the next may arrive whole
    if status in (401, 403) or error_code in schema.AUTH_CODES:
        return Outcome.AUTH
    if status == 429 or status >= 500 or error_code in schema.RETRYABLE_CODES:
        return Outcome.RETRY
    if status == 200 and parsed and not error_code:
        return Outcome.OK
    return Outcome.FATAL


class DliApiError(Exception):
    """A call that did not give a usable answer (after retries, where they apply)."""

    def __init__(self, message: str, outcome: Outcome, *, status: int | None = None, error_code: str = "",
                 request_id: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.error_code = error_code
        self.error_msg = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.resume_at: float | None = None  # clock(): when a throttled caller may call again
        self.logged = False  # already logged where it was handled (the hold-back's one line per hold)

    def __str__(self) -> str:
        parts = []
        if self.outcome is Outcome.AUTH:
            parts.append("authentication failed:")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error_code:
            parts.append(self.error_code)
        text = " ".join(parts)
        message = self.error_msg
        if len(message) > MAX_ERROR_TEXT:  # an API's message is quoted, not carried whole
            message = message[:MAX_ERROR_TEXT] + "..."
        text = f"{text}: {message}" if text else message
        if self.request_id:
            text += f" (request_id={self.request_id})"
        # The API's text reaches logs, --check and exceptions from here: one line, nothing a
        # terminal would act on.
        return one_line(text)


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
