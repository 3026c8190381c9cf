"""The shape of the code, held by tests: modules import one way (web → collector → sweeper →
resources → dli → domain), the DLI side never sees the settings, ``requests`` is imported in one
module, each upstream name is spelled in the one module that owns it, modules stay small, and the
simulator stays out of what runs against the cloud."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "exporter"

# Each module may import only modules before it (and the package root, for __version__).
ORDER = [
    "domain", "logs", "workers", "listen",
    "dli.schema", "regions", "dli.errors", "dli.transport", "dli.signer", "dli.auth", "dli.holdback",
    "dli.iam", "dli.reader", "dli.api",
    "series", "resources.base", "resources.jobs.record", "resources.jobs.views", "resources.jobs",
    "resources.queues", "resources",
    "catalog", "settings", "environment",
    "render", "families", "selfmetrics",
    "sweeper", "discovery", "collector", "probe",
    "web.replies", "web.config", "web.guard", "web.limits", "web.app", "web.server",
    "healthcheck", "wiring", "preflight", "cli",
]
PACKAGES = {"", "dli", "web"}  # packages of docstrings only (and __version__)
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name below ``exporter`` (``__init__`` as its package)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (relative or absolute), by dotted name."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[list[str]] = []
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
            elif (node.module or "").split(".")[0] == "exporter":
                base = []
            else:
                continue
            module = [*base, *((node.module or "").split(".") if node.module else [])]
            if node.level == 0:
                module = module[1:]  # drop "exporter"
            targets = [[*module, alias.name] for alias in node.names] + [module]
        for parts in targets:
            dotted = ".".join(parts[1:] if parts and parts[0] == "exporter" else parts)
            if dotted in known and dotted != name:
                found.add(dotted)
    return found


def test_every_module_has_its_place_in_the_order() -> None:
    known = set(modules())
    unplaced = known - set(ORDER) - PACKAGES - {m for m in known if m.startswith("simulator")}
    assert not unplaced, f"place these in ORDER: {sorted(unplaced)}"


@pytest.mark.parametrize("name", ORDER)
def test_imports_point_one_way(name: str) -> None:
    mods = modules()
    allowed = set(ORDER[:ORDER.index(name)]) | PACKAGES
    if name == "cli":
        allowed.add("simulator")  # for --demo only, imported when asked for (see the next test)
    wrong = imported(name, mods[name], set(mods)) - allowed
    assert not wrong, f"exporter.{name} imports {sorted(wrong)}, which come after it"


@pytest.mark.parametrize("name", [m for m in ORDER if m.startswith("dli.")])
def test_the_dli_side_never_sees_the_settings(name: str) -> None:
    """It is built from plain values: nothing under dli/ imports the settings or where they come from."""
    mods = modules()
    assert not imported(name, mods[name], set(mods)) & {"settings", "environment"}


def test_the_simulator_shares_no_code_with_the_exporter() -> None:
    mods = modules()
    for name, path in mods.items():
        if name.startswith("simulator"):
            outside = {m for m in imported(name, path, set(mods)) if not m.startswith("simulator")}
            assert not outside, f"exporter.{name} imports {sorted(outside)}"


def test_the_runtime_does_not_import_the_simulator() -> None:
    code = ("import sys, exporter.cli, exporter.wiring; "
            "print(sorted(m for m in sys.modules if m.startswith('exporter.simulator')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip() == "[]"


def _imports_requests(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "requests" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "requests" and not node.level:
            return True
    return False


def test_requests_is_imported_in_the_transport_only() -> None:
    users = sorted(name for name, path in modules().items() if _imports_requests(path))
    assert users == ["dli.transport"]


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"exporter.{name} has {lines} lines: split it by concern"


# Names that only the API uses, each with the one module that may spell it: the API as a whole in
# the schema, a list's own names with the resource that reads it. (The contract's label names,
# which coincide with some field names, and the settings named after the job list's filters, are
# ours too.)
UPSTREAM = {
    "dli.schema": {"is_success", "error_msg", "expires_at", "X-Sdk-Date", "X-Project-Id", "X-Auth-Token",
                   "X-Subject-Token", "X-Security-Token", "X-Request-Id", "Retry-After", "DLI.0999", "limit",
                   "offset", "order"},
    "resources.jobs.record": {"job_list", "total_count", "create_time", "start_time", "duration", "restart_times",
                              "has_savepoint", "job_config", "cu_number", "parallel_number", "checkpoint_enabled",
                              "restart_when_exception", "resource_config_version", "resource_config"},
    "resources.jobs": {"streaming/jobs", "show_detail"},
    "dli.iam": {"/v3/auth/domains", "/v3/auth/projects", "domains", "is_domain"},
    "resources.queues": {"queue_type", "all", "cu_count", "used_cu", "is_restarting", "cu_scale_in_limit",
                         "cu_scale_out_limit", "elastic_resource_pool_name"},
}
UPSTREAM_PARTS = {"dli.schema": ("/v3/auth/tokens", "myhuaweicloud", "/v1.0/")}
OUR_HEADERS = {"Retry-After"}  # also sent by our own server (503 past --web.max-requests)
OUR_WORDS = {"all", "show_detail"}  # ours elsewhere too: a word, and a setting named after the parameter


def _string_literals(tree: ast.AST) -> set[str]:
    """String constants of the code, docstrings left out."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


@pytest.mark.parametrize("name", sorted(m for m in modules() if not m.startswith("simulator")))
def test_upstream_names_appear_in_their_owners_only(name: str) -> None:
    literals = _string_literals(ast.parse(modules()[name].read_text()))
    for owner, names in UPSTREAM.items():
        if owner == name:
            continue
        others = names - OUR_WORDS
        if name.startswith("web."):  # the web side answers HTTP itself: a standard header of its own answers
            others -= OUR_HEADERS
        found = sorted(literals & others)
        found += sorted(s for s in literals for part in UPSTREAM_PARTS.get(owner, ()) if part in s)
        assert not found, f"exporter.{name} spells upstream names {found}: take them from exporter.{owner}"


@pytest.mark.parametrize("owner", sorted(UPSTREAM))
def test_the_owners_do_spell_them(owner: str) -> None:
    """The check above looks for names that are really there (it would pass vacuously if not)."""
    literals = _string_literals(ast.parse(modules()[owner].read_text()))
    assert literals >= UPSTREAM[owner]
    assert all(any(part in s for s in literals) for part in UPSTREAM_PARTS.get(owner, ()))
