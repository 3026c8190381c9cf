"""The shape of the code, held by tests: modules import one way (web → collector → sweeper → dli →
domain), ``requests`` is imported in one module, upstream names appear in one module, modules stay
small, and the simulator stays out of what runs against the cloud."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "exporter"

# Each module may import only modules before it (and the package root, for __version__).
ORDER = [
    "domain", "logs", "workers", "listen", "projects",
    "dli.schema", "catalog", "settings", "environment",
    "render", "mapping", "selfmetrics",
    "dli.errors", "dli.transport", "dli.holdback", "dli.credentials", "dli.reader", "dli.api",
    "views", "sweeper",
    "collector", "probe",
    "web.config", "web.guard", "web.limits", "web.app", "web.server",
    "healthcheck", "main", "check", "cli",
]
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
    unplaced = known - set(ORDER) - {"", "dli", "web"} - {m for m in known if m.startswith("simulator")}
    assert not unplaced, f"place these in ORDER: {sorted(unplaced)}"


@pytest.mark.parametrize("name", ORDER)
def test_imports_point_one_way(name: str) -> None:
    mods = modules()
    allowed = set(ORDER[:ORDER.index(name)]) | {"", "dli", "web"}  # packages: docstrings (and __version__)
    if name == "cli":
        allowed.add("simulator")  # for --demo only, imported when asked for (see the next test)
    wrong = imported(name, mods[name], set(mods)) - allowed
    assert not wrong, f"exporter.{name} imports {sorted(wrong)}, which come after it"


def test_the_simulator_shares_no_code_with_the_exporter() -> None:
    mods = modules()
    for name, path in mods.items():
        if name.startswith("simulator"):
            outside = {m for m in imported(name, path, set(mods)) if not m.startswith("simulator")}
            assert not outside, f"exporter.{name} imports {sorted(outside)}"


def test_the_runtime_does_not_import_the_simulator() -> None:
    code = ("import sys, exporter.cli, exporter.main; "
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


# Names that only the API uses (the contract's label names, which coincide with some field names,
# and the settings named after the API's filters, are ours too).
UPSTREAM = {"job_list", "total_count", "is_success", "error_msg",
            "create_time", "start_time", "duration", "restart_times", "has_savepoint", "job_config",
            "cu_number", "parallel_number", "checkpoint_enabled", "restart_when_exception", "expires_at",
            "X-Sdk-Date", "X-Project-Id", "X-Auth-Token", "X-Subject-Token", "X-Security-Token", "X-Request-Id",
            "Retry-After", "DLI.0999", "limit", "offset", "order"}
UPSTREAM_PARTS = ("/streaming/jobs", "/v3/auth/tokens", "myhuaweicloud")
OUR_HEADERS = {"Retry-After"}  # also sent by our own server (503 past --web.max-requests)


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


def test_upstream_names_appear_in_the_schema_only() -> None:
    for name, path in modules().items():
        if name == "dli.schema" or name.startswith("simulator"):
            continue
        literals = _string_literals(ast.parse(path.read_text()))
        # The web side answers HTTP itself: a standard header of its own answers is not DLI's.
        upstream = UPSTREAM - OUR_HEADERS if name.startswith("web.") else UPSTREAM
        found = sorted(literals & upstream) + sorted(s for s in literals for part in UPSTREAM_PARTS if part in s)
        assert not found, f"exporter.{name} spells upstream names {found}: take them from dli.schema"


def test_the_schema_does_spell_them() -> None:
    """The check above looks for names that are really there (it would pass vacuously if not)."""
    literals = _string_literals(ast.parse(modules()["dli.schema"].read_text()))
    assert literals >= UPSTREAM
    assert all(any(part in s for s in literals) for part in UPSTREAM_PARTS)
