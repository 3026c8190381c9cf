"""Where settings come from: the environment variable behind each setting, the ``DLI_EXPORTER_*``
names nobody reads (typos worth a warning), :func:`load_settings`, which turns pydantic's first
validation error into a :class:`~exporter.settings.ConfigError` naming the variable, and
:func:`config_failure`, the one line and exit code every command gives for a bad setting."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TextIO, TypeVar

from pydantic import AliasChoices, ValidationError

from .logs import one_line
from .settings import ENV_PREFIX, EXIT_CONFIG, SWITCHED, ConfigError, ServerSettings, Settings

S = TypeVar("S", bound=ServerSettings)


def _aliases(name: str) -> list[str]:
    info = SWITCHED.model_fields.get(name)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    return []


def env_name(key: str) -> str:
    """The environment variable behind ``key``: a field's name (its first alias, else the
    prefixed name) or, as pydantic reports errors of aliased fields, an alias itself."""
    if key in SWITCHED.model_fields:
        aliases = _aliases(key)
        return aliases[0] if aliases else ENV_PREFIX + key.upper()
    for name in SWITCHED.model_fields:
        for alias in _aliases(name):
            if alias.upper() == key.upper():
                return alias
    return key.upper()


def known_env_names() -> set[str]:
    """Every variable name the exporter reads, for warning about typos in DLI_EXPORTER_*.
    A field with aliases is read under its aliases only (pydantic-settings adds no prefix)."""
    names = set()
    for name in SWITCHED.model_fields:
        names.update(_aliases(name) or [ENV_PREFIX + name.upper()])
    return names


def unknown_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    known = known_env_names()
    return sorted(k for k in env if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read and validate every setting once. Raises ConfigError on the first problem found.

    ``overrides`` are command-line values by field name; they win over the environment.
    """
    return load(SWITCHED, overrides)


def load(model: type[S], overrides: Mapping[str, Any] | None = None) -> S:
    """:func:`load_settings` for ``model``, Settings or a part of it (ServerSettings)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    try:
        return model(**given)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        name = str(err["loc"][0]) if err["loc"] else "settings"
        raise ConfigError(env_name(name), _clean_message(err["msg"])) from None


def config_failure(program: str, exc: ConfigError, err: TextIO) -> int:
    """Say what is wrong with a setting, in one line on ``err``, and give the exit code for it."""
    print(f"{program}: invalid setting {exc.setting}: {one_line(exc.problem)}", file=err)
    return EXIT_CONFIG


def _clean_message(msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return " ".join(msg.split())
