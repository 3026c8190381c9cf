"""What every DLI and IAM call shares, as it is spelled upstream: headers, error bodies and codes,
the region table and its endpoints, the IAM login, and the converters every parser reads fields
with.

The names of one API list (its path, its query parameters, its fields) live with the resource
that reads it (:mod:`exporter.resources`); the names here are those of the API as a whole, so a
renamed header or error field is one edit.

Real answers drift from the documentation: fields go missing or null, numbers arrive as strings,
booleans as "true". The converters take all of that as meant and give None for what cannot be
taken (a word where a number belongs); what a parser then does is its own decision.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from ..domain import FieldError

T = TypeVar("T")

PAGE_LIMIT = 100  # the list APIs' largest page
# Label values from an answer longer than this are cut to it, ending in "…": the API documents 57
# characters for a name and 128 for a queue, so no real value is touched, and a hostile answer
# cannot grow the exposition without bound.
MAX_LABEL_CHARS = 256

# Headers. Every header a request carries is signed, so these are the only ones sent.
PROJECT_HEADER = "X-Project-Id"
DOMAIN_HEADER = "X-Domain-Id"
REQUEST_ID_HEADER = "X-Request-Id"
SDK_DATE_HEADER = "X-Sdk-Date"
SECURITY_TOKEN_HEADER = "X-Security-Token"  # noqa: S105  (a header name, not a secret)
AUTH_TOKEN_HEADER = "X-Auth-Token"  # noqa: S105
IAM_TOKEN_HEADER = "X-Subject-Token"  # noqa: S105
RETRY_AFTER_HEADER = "Retry-After"

# Error codes that mean "try again": DLI reports its own internal errors (DLI.0999) with HTTP 400.
RETRYABLE_CODES = frozenset({"DLI.0999"})
# Error codes that refuse the credential although the status is not 401: a token DLI cannot
# parse is DLI.0015 with HTTP 400.
AUTH_CODES = frozenset({"DLI.0015"})


class PayloadError(ValueError):
    """The answer is not what was asked for. ``code`` is the API's error code when it gave one.
    The message names the field, never its value (which may be huge, or hostile)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


# --- converters ---

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the API's integers are Java longs


def to_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a numeric string within int64; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return None
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                real = float(text)
            except ValueError:
                return None
            if not (math.isfinite(real) and real.is_integer()):
                return None
            number = int(real)
    else:
        return None
    return number if INT64_MIN <= number <= INT64_MAX else None


def to_float(value: Any) -> float | None:
    """A finite number from a number or a numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def text(value: str) -> str:
    """A string of the API as a label value: unchanged, unless it holds what UTF-8 cannot carry."""
    if value.isascii():  # constant time in CPython: the common case costs next to nothing
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON may escape a lone surrogate (\ud800), which json.loads keeps; no exposition
        # could be encoded with it. Each one becomes U+FFFD, as a lenient UTF-8 decoder would.
        return _SURROGATE.sub("\ufffd", value)
    return value


def to_str(value: Any) -> str:
    """The API's string (made encodable); null, missing or a non-scalar becomes the empty string."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def to_label(value: Any) -> str | None:
    """A label value: a scalar as a string of at most MAX_LABEL_CHARS (longer ones cut, ending in
    "…"); None for an object or a list, which no label can stand for."""
    if isinstance(value, dict | list):
        return None
    label = to_str(value)
    return label if len(label) <= MAX_LABEL_CHARS else label[:MAX_LABEL_CHARS - 1] + "\u2026"


def kind(value: Any) -> str:
    """What a JSON value is, for error messages: never the value itself (it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# --- answers ---

def check_success(payload: Any) -> dict[str, Any]:
    """A decoded answer as an object whose ``is_success`` is not false (a string in some answers,
    a bool in others); PayloadError, with the API's code and message, otherwise."""
    if not isinstance(payload, dict):
        raise PayloadError("the answer is not a JSON object")
    if to_bool(payload.get("is_success")) is False:
        code, message = error_fields(payload)
        raise PayloadError(message or "is_success is false", code)
    return payload


def read_entries(entries: list[Any], where: str,
                 parse: Callable[[Any, list[FieldError]], T]) -> tuple[list[T], list[FieldError]]:
    """Each entry of an answer's list read by ``parse``, and the fields it left out. An entry that
    is no record at all fails the answer, named by its place (``job_list.jobs[3] has no job_id``)."""
    errors: list[FieldError] = []
    records = []
    for place, raw in enumerate(entries):
        try:
            records.append(parse(raw, errors))
        except PayloadError as exc:
            raise PayloadError(f"{where}[{place}]{exc}") from None
    return records, errors


def error_fields(payload: Any) -> tuple[str, str]:
    """(error_code, error_msg) from a DLI or API-gateway error body, whatever its spelling."""
    if not isinstance(payload, dict):
        return "", ""
    code = to_str(payload.get("error_code") or payload.get("code"))
    message = to_str(payload.get("error_msg") or payload.get("message") or payload.get("msg"))
    # IAM nests its errors: {"error": {"code": 401, "message": "..."}}
    nested = payload.get("error")
    if not code and isinstance(nested, dict):
        code = to_str(nested.get("code"))
        message = message or to_str(nested.get("message"))
    return code, message


def error_request_id(payload: Any) -> str:
    """The request id an API-gateway error body carries, for when the X-Request-Id header is missing."""
    if not isinstance(payload, dict):
        return ""
    return to_str(payload.get("request_id") or payload.get("requestId"))


# --- requests ---

def paging(offset: int) -> list[tuple[str, str]]:
    """The paging parameters of the list APIs, oldest first: jobs created during a read land on
    the last page instead of shifting every page."""
    return [("limit", str(PAGE_LIMIT)), ("offset", str(offset)), ("order", "asc")]


def one_entry() -> list[tuple[str, str]]:
    """The parameters of a list call that asks for its first entry alone."""
    return [("limit", "1")]


def url(base: str, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """``base`` + ``path`` (segments already quoted) + the query, built here already in the
    signer's canonical order and encoding, so the server sees exactly the string that was signed."""
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params))
    return f"{base}{path}?{query}" if query else f"{base}{path}"


def project_path(project_id: str, rest: str) -> str:
    """A DLI path of a project: ``/v1.0/{project_id}/{rest}``."""
    return f"/v1.0/{quote(project_id, safe='')}/{rest}"


# --- regions and endpoints ---

# The regions of the official SDK's table (huaweicloudsdkdli/v1/region/dli_region.py, 3.1.x), and
# the one whose cloud has its own domain: DLI and IAM of eu-west-101 are on .myhuaweicloud.eu.
REGIONS = (
    "af-north-1", "af-south-1", "ae-ad-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
    "cn-east-2", "cn-east-3", "cn-east-4", "cn-east-5", "cn-north-1", "cn-north-2", "cn-north-4", "cn-north-9",
    "cn-south-1", "cn-southwest-2", "eu-west-0", "eu-west-101", "la-north-2", "la-south-2", "me-east-1",
    "my-kualalumpur-1", "na-mexico-1", "ru-moscow-1", "ru-northwest-2", "sa-brazil-1", "tr-west-1",
)
_DOMAINS = {"eu-west-101": "myhuaweicloud.eu"}
_DEFAULT_DOMAIN = "myhuaweicloud.com"


def api_endpoint(region: str) -> str:
    """DLI's endpoint in ``region`` (one of :data:`REGIONS`)."""
    return f"https://dli.{region}.{_DOMAINS.get(region, _DEFAULT_DOMAIN)}"


def iam_endpoint(region: str) -> str:
    """IAM's endpoint in ``region``: in the same cloud (domain) as DLI's."""
    return f"https://iam.{region}.{_DOMAINS.get(region, _DEFAULT_DOMAIN)}"


def global_iam_endpoint(regions: Sequence[str] = ()) -> str:
    """IAM's global endpoint, where the account's projects are listed: the European site's when
    every region asked for is there, else the international one."""
    domains = {_DOMAINS.get(region, _DEFAULT_DOMAIN) for region in regions}
    return f"https://iam.{domains.pop() if len(domains) == 1 else _DEFAULT_DOMAIN}"


# --- IAM login ---

def token_url(iam_base: str) -> str:
    return iam_base + "/v3/auth/tokens"


def iam_password_request(username: str, password: str, domain: str, project_id: str | None) -> dict[str, Any]:
    """A password login's body: a token scoped to ``project_id``, or to the account (the domain)
    when there is none (what the project look-up needs)."""
    scope = {"project": {"id": project_id}} if project_id is not None else {"domain": {"name": domain}}
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": username, "password": password, "domain": {"name": domain}}},
            },
            "scope": scope,
        }
    }


def iam_token_expiry(payload: Any) -> str | None:
    """``token.expires_at`` (ISO 8601) from an IAM login answer."""
    if isinstance(payload, dict) and isinstance(payload.get("token"), dict):
        value = payload["token"].get("expires_at")
        return value if isinstance(value, str) else None
    return None
