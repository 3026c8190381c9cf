"""Exposition: content negotiation, and fast rendering byte-identical to prometheus-client's.

prometheus-client builds a ``Sample`` and a labels dict per series and formats each label
separately: about 50 µs per job here, most of a scrape's CPU. Our families are uniform (legacy
metric names, no units, timestamps or exemplars), so each (sample name, label names) pair gets a
generated line function with the labels sorted by code, and a series costs one concatenation.
The per-record series (of jobs, queues: most of the output) are rendered by a loop generated
from their resource's table. The golden and property tests compare every path with prometheus-client's output
byte for byte.

Negotiation is prometheus-client's own (:func:`choose_encoder`); its answer is parsed into a
format, a version and an escaping scheme, and rendered here: there is one rendering path. Our
names are legacy names, which no scheme quotes, so every scheme it can negotiate is rendered the
same way; only ``dots`` changes them (underscores double), which the generated functions apply
once, at generation time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, cast

from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from .series import LEGACY_NAME, PROJECT_ID, Attr, Const, MetricSpec, RecordSeries, Table

_go_float = cast(Callable[[float], str], floatToGoString)
Format = Callable[[float], str]

TEXT, OPENMETRICS = "text", "openmetrics"
SCHEMES = ("underscores", "dots", "values", "allow-utf-8")


# --- values and label values ---

def format_value(value: float) -> str:
    """A sample value as prometheus-client writes it (Go's float formatting)."""
    if type(value) is int and 0 <= value < 1_000_000:  # 0/1 flags, restarts: the common case
        return f"{value}.0"
    return _go_float(value)


class ValueFormatter:
    """:func:`format_value` that remembers the floats of the last two renders.

    Creation and start timestamps come back unchanged every sweep, and Go-style formatting costs
    about 1 µs a float here against 50 ns for a lookup. Keeping two generations (this render's
    and the previous one's) bounds memory by twice one scrape's distinct values, however long the
    exporter runs. 0.0 is not cached: it equals -0.0 as a key but prints differently.
    """

    def __init__(self) -> None:
        self._current: dict[float, str] = {}
        self._previous: dict[float, str] = {}

    def start_render(self) -> None:
        self._previous, self._current = self._current, {}

    def __call__(self, value: float) -> str:
        if type(value) is int and 0 <= value < 1_000_000:
            return f"{value}.0"
        if type(value) is float and value:
            text = self._current.get(value)
            if text is None:
                text = self._previous.get(value)
                if text is None:
                    # Below a million Go's formatting is Python's repr (no exponent sooner): the
                    # common case of a new duration, without prometheus-client's general path.
                    text = repr(value) if 0.0 < value < 1_000_000.0 else _go_float(value)
                self._current[value] = text
            return text
        return _go_float(value)


def needs_escape(text: str) -> bool:
    """Whether a label value holds a character the exposition formats escape."""
    return "\\" in text or '"' in text or "\n" in text


def escape_label_value(value: str) -> str:
    if needs_escape(value):
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def escape_name(name: str, escaping: str) -> str:
    """A metric or label name of ours under an escaping scheme. Ours are legacy names, which
    ``underscores``, ``values`` and ``allow-utf-8`` leave as they are; ``dots`` doubles underscores."""
    if not LEGACY_NAME.fullmatch(name):
        raise ValueError(f"not a legacy metric or label name: {name!r}")
    return name.replace("_", "__") if escaping == "dots" else name


# --- negotiation ---

@dataclass(frozen=True)
class Negotiated:
    """What a scrape's ``Accept`` header came to."""

    format: str  # TEXT or OPENMETRICS
    version: str
    escaping: str
    content_type: str


def negotiate(accept: str) -> Negotiated:
    """prometheus-client's choice for ``accept``, as format, version and escaping. Every content
    type it can choose today has a reading; one a later version might add is answered as 0.0.4 text."""
    _, content_type = choose_encoder(accept)
    return parse_content_type(content_type) or PLAIN_TEXT


PLAIN_TEXT = Negotiated(TEXT, "0.0.4", "underscores", "text/plain; version=0.0.4; charset=utf-8")


def parse_content_type(content_type: str) -> Negotiated | None:
    """A negotiated content type as format, version and escaping (default ``underscores``)."""
    media, *params = (part.strip() for part in content_type.split(";"))
    fmt = {"text/plain": TEXT, "application/openmetrics-text": OPENMETRICS}.get(media)
    values = dict(param.partition("=")[::2] for param in params)
    escaping = values.get("escaping", "underscores")
    if fmt is None or escaping not in SCHEMES:
        return None
    return Negotiated(fmt, values.get("version", ""), escaping, content_type)


# --- families ---

class FamilyLike(Protocol):
    """A family to render: ``samples`` as (sample name, label names, label values, value) tuples,
    or, for per-job families rendered while mapping, ``lines``."""

    @property
    def name(self) -> str: ...  # as exposed; counters end in _total

    @property
    def type(self) -> str: ...

    @property
    def help(self) -> str: ...


class SpecFamily:
    """A family of the catalog: its name (as exposed), type and help come from its spec."""

    __slots__ = ("spec",)

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def help(self) -> str:
        return self.spec.help


class RenderedFamily(SpecFamily):
    """A family whose sample lines are already rendered: the per-record families."""

    __slots__ = ("lines",)

    def __init__(self, spec: MetricSpec) -> None:
        super().__init__(spec)
        self.lines: list[str] = []


def _literal(text: str) -> str:
    """Constant text as a piece of a generated f-string."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("{", "{{").replace("}", "}}")


def _label_part(labels: Sequence[tuple[str, str]], escaping: str) -> str:
    """Source, inside an f-string, of ``{a="...",b="..."}``: ``labels`` as (name, expression), sorted here."""
    if not labels:
        return ""
    pairs = [f'{_literal(escape_name(label, escaping))}="{{{expr}}}"' for label, expr in sorted(labels)]
    return "{{" + ",".join(pairs) + "}}"


def _series_fstring(name: str, labels: Sequence[tuple[str, str]], value: str, escaping: str) -> str:
    """Source of an f-string for one series line; ``value`` is f-string source of the formatted value."""
    return "f'" + _literal(escape_name(name, escaping)) + _label_part(labels, escaping) + " " + value + "\\n'"


LineFunction = Callable[[tuple[str, ...], str], str]


@lru_cache(maxsize=256)
def _line_function(name: str, labels: tuple[str, ...], escaping: str) -> LineFunction:
    """A function (label values in ``labels`` order, formatted value) -> one exposition line.
    Only our own metric and label names (checked legacy names) enter the generated code."""
    source = "lambda v, x: " + _series_fstring(name, [(label, f"v[{i}]") for i, label in enumerate(labels)], "{x}",
                                                  escaping)
    return cast(LineFunction, eval(source, {}))  # noqa: S307  (literals of our own names only)


def _sample_lines(family: FamilyLike, fmt: Format, escaping: str, out: list[str]) -> None:
    rendered: list[str] | None = getattr(family, "lines", None)
    if rendered is not None:
        out.extend(rendered)
        return
    samples: list[tuple[str, tuple[str, ...], tuple[str, ...], float]] = getattr(family, "samples")  # noqa: B009
    append = out.append
    for name, labels, values, value in samples:
        line = _line_function(name, labels, escaping)  # cached: a few hundred such samples a scrape
        # Label values rarely need escaping: one scan of them all instead of a call per value.
        if needs_escape("".join(values)):
            append(line(tuple(escape_label_value(v) for v in values), fmt(value)))
        else:
            append(line(values, fmt(value)))


def _text_family(family: FamilyLike, fmt: Format, escaping: str) -> str:
    """One family in the Prometheus text format (0.0.4, or 1.0.0 with ``escaping``)."""
    name = escape_name(family.name, escaping)
    doc = family.help.replace("\\", r"\\").replace("\n", r"\n")
    out = [f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n"]
    _sample_lines(family, fmt, escaping, out)
    return "".join(out)


def _openmetrics_family(family: FamilyLike, fmt: Format, escaping: str) -> str:
    """One family in OpenMetrics 1.0.0."""
    # OpenMetrics names a counter family without its _total suffix.
    base = family.name.removesuffix("_total") if family.type == "counter" else family.name
    name = escape_name(base, escaping)
    doc = family.help.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    out = [f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n"]
    _sample_lines(family, fmt, escaping, out)
    return "".join(out)


def render_chunks(families: list[FamilyLike], negotiated: Negotiated, fmt: Format = format_value) -> Iterator[bytes]:
    """The exposition family by family, as UTF-8, **consuming** ``families``: each family is let
    go once written, so a scrape holds one family's text at a time rather than the whole
    exposition several times over (lines, text, bytes, compressed: 10 MB each at 10,000 jobs)."""
    om = negotiated.format == OPENMETRICS
    write = _openmetrics_family if om else _text_family
    families.reverse()  # pop() from the end: the first family first
    while families:
        yield write(families.pop(), fmt, negotiated.escaping).encode("utf-8")
    if om:
        yield b"# EOF\n"


def render_text(families: Iterable[FamilyLike], fmt: Format = format_value, escaping: str = "underscores") -> bytes:
    """The Prometheus text format (0.0.4, or 1.0.0 with ``escaping``), as prometheus-client writes it."""
    return b"".join(render_chunks(list(families), Negotiated(TEXT, "1.0.0", escaping, ""), fmt))


def render_openmetrics(families: Iterable[FamilyLike], fmt: Format = format_value,
                       escaping: str = "underscores") -> bytes:
    """OpenMetrics 1.0.0, as prometheus-client's OpenMetrics ``generate_latest`` writes it."""
    return b"".join(render_chunks(list(families), Negotiated(OPENMETRICS, "1.0.0", escaping, ""), fmt))


def render(families: Iterable[FamilyLike], negotiated: Negotiated, fmt: Format = format_value) -> bytes:
    return b"".join(render_chunks(list(families), negotiated, fmt))


# --- the per-record series, straight to lines ---

RecordRenderer = Callable[[Iterable[Any], str, Format, list[Callable[[str], None]]], None]


def _value_source(value: Attr | Const) -> tuple[list[str], str | None, str]:
    """(statements that set ``x``, the condition for a series or None for always, f-string source
    of the formatted value) for a table value: the same as calling it, written out."""
    if isinstance(value, Const):
        if value.when is not None:
            return [f"x = r.{value.when}"], "x", _literal(format_value(value.value))
        return [], None, _literal(format_value(value.value))
    lines = [f"x = r.{value.name}"]
    if value.flag:
        text = '{"1.0" if x else "0.0"}'
    elif value.divisor:
        text = f"{{fmt(x / {value.divisor})}}"
    else:
        text = "{fmt(x)}"
    return lines, "x is not None", text


@lru_cache(maxsize=32)
def _record_renderer(table: Table, series: tuple[RecordSeries, ...], escaping: str) -> RecordRenderer:
    """A loop over records that appends each series' line to its family, generated from the table.

    The hot loop of a scrape, once per record, so it is written out in full: values read inline
    from the table's attributes, the text labels of all series (and a text key) checked for
    escaping at once, and the ``{key=..,project_id=..}`` part that most series share built once
    per record."""
    texts = list(dict.fromkeys(name for s in series for name in s.labels))  # each text label's attribute
    checked = texts if table.numeric_key else [table.key, *(t for t in texts if t != table.key)]
    head = ["def render(records, p, fmt, appends):", *(f"    a{i} = appends[{i}]" for i in range(len(series)))]
    body = ["    for r in records:"]
    body += [f"        t_{name} = r.{name}" for name in dict.fromkeys([table.key, *checked])]
    if checked:
        body += ["        j = " + " + ".join(f"t_{name}" for name in checked),
                 """        if '\\\\' in j or '"' in j or '\\n' in j:""",
                 *(f"            t_{name} = esc(t_{name})" for name in checked)]
    key = (table.key_label, f"t_{table.key}")
    body.append("        ids = f'" + _label_part([(PROJECT_ID, "p"), key], escaping) + " '")
    for i, s in enumerate(series):
        setup, condition, value = _value_source(s.value)
        if s.labels:
            pairs = zip(s.spec.labels[2:], s.labels, strict=True)
            exprs = [(PROJECT_ID, "p"), key, *((label, f"t_{attr}") for label, attr in pairs)]
            line = _series_fstring(s.spec.name, exprs, value, escaping)
        else:  # the shared {key=..,project_id=..} part
            line = "f'" + _literal(escape_name(s.spec.name, escaping)) + "{ids}" + value + "\\n'"
        body += [f"        {statement}" for statement in setup]
        if condition is None:
            body.append(f"        a{i}({line})")
        else:
            body += [f"        if {condition}:", f"            a{i}({line})"]
    scope: dict[str, Any] = {"esc": escape_label_value}
    exec("\n".join(head + body), scope)  # noqa: S102  (generated from our own tables: names and attributes only)
    return cast(RecordRenderer, scope["render"])


def render_records(table: Table, series: tuple[RecordSeries, ...], projects: Iterable[tuple[str, list[Any]]],
                   fmt: Format, escaping: str = "underscores") -> list[RenderedFamily]:
    """The per-record families of ``series`` (of ``table``) for the given (project id, records
    sorted by key) pairs, as lines."""
    families = [RenderedFamily(s.spec) for s in series]
    appends = [f.lines.append for f in families]
    render = _record_renderer(table, series, escaping)
    for project_id, records in projects:
        render(records, escape_label_value(project_id), fmt, appends)
    return families
