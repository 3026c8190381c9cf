"""Configuration: every setting, read once from the environment (and flags) and validated at start-up.

Credentials use the official Huawei Cloud SDK's variable names (``HUAWEICLOUD_SDK_*``) so an
environment that already works with Huawei's tools works here; everything else is
``DLI_EXPORTER_*``. A bad setting raises :class:`ConfigError` naming the variable; the CLI turns
that into one line on stderr and exit code 2 (:func:`exporter.environment.config_failure`).

A :class:`Settings` exists only validated (build it with
:func:`exporter.environment.load_settings`): the rules that span several settings run inside
pydantic's validation, so a consumer holding one never checks again. Settings hold plain
configuration: strings, numbers, secrets, and values derived from them (the projects as targets,
the authentication method's name and options). What is built from them (the DLI side, the
resources) is built by the wiring, and the DLI side never sees a setting.

Each registered resource with a switch (:class:`exporter.resources.Switch`) gets its two settings
here without a line of its own: :data:`SWITCHED` is :class:`Settings` with them added.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .dli import schema
from .dli.auth import AccessKey, IamPassword
from .domain import MAX_SCRAPE_TIMEOUT, Target
from .listen import parse_listen_address
from .regions import PROBE_ENTRY, REGION, NoEndpoint, dli_endpoint, iam_endpoint, split_entry
from .resources import REGISTERED, Options, Resource, Switch
from .resources.jobs import FILTERS, JOB_TYPES
from .workers import MAX_WORKERS

ENV_PREFIX = "DLI_EXPORTER_"
DEFAULT_PORT = 9822
EXIT_CONFIG = 2  # the exit code of a bad setting, for every command


class ConfigError(Exception):
    """A setting is missing or invalid. ``setting`` is the environment variable to fix."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


def _sdk(name: str, *more: str) -> Any:
    """Environment names for a field that does not follow the prefix (the SDK's own names)."""
    return AliasChoices(name, *more)


class ServerSettings(BaseSettings):
    """Where and how the exporter serves: all that ``dli-exporter healthcheck`` reads (it needs no
    credentials). :class:`Settings` holds these and everything else."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
        hide_input_in_errors=True,  # a rejected value may be a secret: never echo it
    )

    listen_address: str = f"0.0.0.0:{DEFAULT_PORT}"
    web_config_file: str | None = None  # TLS and basic auth, in the exporter toolkit's format

    @field_validator("listen_address")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen_address(value)
        return value.strip()

    @field_validator("web_config_file", mode="before")
    @classmethod
    def _blank_file_is_unset(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value


class Settings(ServerSettings):
    """All settings of the exporter. Build it with :func:`exporter.environment.load_settings`."""

    # --- credentials (official SDK names) ---
    ak: str | None = Field(None, validation_alias=_sdk("HUAWEICLOUD_SDK_AK"))
    sk: SecretStr | None = Field(None, validation_alias=_sdk("HUAWEICLOUD_SDK_SK"))
    security_token: SecretStr | None = Field(
        None, validation_alias=_sdk("HUAWEICLOUD_SDK_SECURITY_TOKEN")
    )
    sdk_project_id: str | None = Field(
        None, validation_alias=_sdk("HUAWEICLOUD_SDK_PROJECT_ID")
    )
    sdk_region: str | None = Field(None, validation_alias=_sdk("HUAWEICLOUD_SDK_REGION"))

    # --- IAM password login, the alternative to AK/SK ---
    iam_username: str | None = None
    iam_password: SecretStr | None = None
    iam_domain: str | None = None
    iam_endpoint: str | None = None

    # --- where ---
    region: str | None = None
    endpoint: str | None = None
    project_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    probe_allowed: Annotated[list[str], NoDecode] = Field(default_factory=list)  # what /probe may sweep
    # Discovery: auto looks the account's projects up when none is configured; on, alongside them.
    discovery: Literal["auto", "on", "off"] = "auto"
    regions: Annotated[list[str], NoDecode] = Field(default_factory=list)  # where it looks; empty: everywhere
    discovery_interval_seconds: float = Field(600.0, ge=1, le=86400)

    # --- what to ask for (passed through to the list API) ---
    show_detail: bool = True  # also read the detail view (run_mode, job_config), on its own cadence
    detail_interval_seconds: float = Field(600.0, ge=0, le=86400)
    job_type: str | None = None
    queue_name: str | None = None
    tags: str | None = None
    user_name: str | None = None
    name: str | None = Field(None, validation_alias=_sdk("DLI_EXPORTER_JOB_NAME", "DLI_EXPORTER_NAME"))
    status: str | None = None
    per_job_metrics: bool = True

    # --- how ---
    cache_seconds: float = Field(10.0, ge=0, le=3600)
    probe_idle_seconds: float = Field(900.0, ge=1, le=86400)  # a probed target unused this long is forgotten
    request_timeout_seconds: float = Field(10.0, gt=0, le=300)
    retries: int = Field(3, ge=0, le=10)
    # An API answer larger than this is refused (the project is down); see transport.MAX_RESPONSE_BYTES.
    max_response_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024, le=1024 ** 3)
    concurrency: int = Field(8, ge=1, le=10)
    scrape_timeout_seconds: float = Field(10.0, gt=0, le=MAX_SCRAPE_TIMEOUT)
    web_max_requests: int = Field(40, ge=0, le=10000)  # in flight; 503 beyond; 0: no limit (node_exporter's 40)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["logfmt", "json"] = "logfmt"

    @field_validator("project_ids", "probe_allowed", "regions", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            seen: dict[str, None] = {}
            for item in value:
                text = str(item).strip()
                if text:
                    seen[text] = None
            return list(seen)
        return value

    @field_validator("project_ids")
    @classmethod
    def _check_ids(cls, value: list[str]) -> list[str]:
        for entry in value:
            if split_entry(entry) is None:
                raise ValueError("expected project ids (letters, digits, '-' and '_'), each optionally as "
                                 "region:project_id, comma-separated")
        return value

    @field_validator("probe_allowed")
    @classmethod
    def _check_allowed(cls, value: list[str]) -> list[str]:
        if any(split_entry(entry, PROBE_ENTRY) is None for entry in value):
            raise ValueError("expected project ids (32 lower-case hex digits), each optionally as "
                             "region:project_id, comma-separated")
        return value

    @field_validator("regions")
    @classmethod
    def _check_regions(cls, value: list[str]) -> list[str]:
        unserved = [region for region in value if region not in schema.REGIONS]
        if unserved:
            raise ValueError(f"DLI is not offered in {unserved[0]} (the SDK's region table); expected regions such "
                             "as cn-north-4, comma-separated")
        return value

    @field_validator("log_level", "log_format", "discovery", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "ak", "sdk_project_id", "sdk_region", "iam_username", "iam_domain", "iam_endpoint", "region",
        "endpoint", "job_type", "queue_name", "tags", "user_name", "name", "status", mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("sk", "security_token", "iam_password", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("region", "sdk_region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is not None and not REGION.fullmatch(value):
            raise ValueError("expected a region name such as cn-north-4")
        return value

    @field_validator("endpoint", "iam_endpoint")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL")
        try:
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise ValueError("the URL's port is not a number from 0 to 65535") from None
        return value.rstrip("/")

    # --- derived values ---

    @property
    def effective_region(self) -> str | None:
        return self.region or self.sdk_region

    @property
    def effective_project_ids(self) -> list[str]:
        if self.project_ids:
            return self.project_ids
        return [self.sdk_project_id] if self.sdk_project_id else []

    @property
    def project_entries(self) -> list[tuple[str, str]]:
        """(region, project id) of each configured project; the default region where none is given."""
        entries = []
        for entry in self.effective_project_ids:
            split = split_entry(entry)
            if split is not None:
                entries.append((split[0] or self.effective_region or "", split[1]))
        return entries

    @property
    def probe_allowlist(self) -> frozenset[tuple[str | None, str]]:
        """(region or None for any, project id) of each entry of DLI_EXPORTER_PROBE_ALLOWED."""
        return frozenset(s for entry in self.probe_allowed if (s := split_entry(entry, PROBE_ENTRY)) is not None)

    @property
    def unknown_job_type(self) -> bool:
        """DLI_EXPORTER_JOB_TYPE is none of the types the documentation knows (it is passed on all
        the same: the API may know a type the documentation does not yet)."""
        return self.job_type is not None and self.job_type not in JOB_TYPES

    @property
    def job_filters(self) -> dict[str, str]:
        """The job list's filters that are set (the settings carry the API's names)."""
        return {n: v for n in FILTERS if (v := getattr(self, n)) is not None}

    @property
    def discovers(self) -> bool:
        """Whether the account's projects are looked up: on, or auto with none configured."""
        return self.discovery == "on" or (self.discovery == "auto" and not self.effective_project_ids)

    @property
    def discovery_iam_endpoint(self) -> str:
        """Where the projects are looked up: DLI_EXPORTER_IAM_ENDPOINT, else IAM's global endpoint
        (the European site's when every region asked for is there)."""
        near = self.regions or ([self.effective_region] if self.effective_region else [])
        return self.iam_endpoint or schema.global_iam_endpoint(near)

    @property
    def auth_method(self) -> str:
        """The name of the authentication method (:data:`exporter.dli.auth.METHODS`) the settings give."""
        return IamPassword.name if self.iam_username is not None else AccessKey.name

    @property
    def _logins_at_global_iam(self) -> bool:
        """Without a region, an IAM user logs in where the projects are looked up (global IAM)."""
        return self.discovers and not self.effective_region

    @property
    def auth_options(self) -> dict[str, Any]:
        """That method's options, every one present (validation made sure)."""
        if self.auth_method == IamPassword.name:
            base = self.discovery_iam_endpoint if self._logins_at_global_iam else \
                iam_endpoint(self.effective_region, self.iam_endpoint)
            token_url = schema.token_url(base)
            return {"username": self.iam_username, "password": self.iam_password, "domain": self.iam_domain,
                    "token_url": token_url}
        return {"ak": self.ak, "sk": self.sk, "security_token": self.security_token}

    @cached_property
    def targets(self) -> tuple[Target, ...]:
        """The configured projects, each read at its region's endpoint."""
        return tuple(self.target(pid, region) for region, pid in self.project_entries)

    def target(self, project_id: str, region: str | None = None) -> Target:
        """A project in ``region`` (the default region if None). Raises NoEndpoint."""
        region = self.effective_region or "" if region is None else region
        return Target(project_id, dli_endpoint(region, self.endpoint), region)

    def resource_options(self) -> Options:
        """What the resources are built with."""
        return Options(cache_seconds=self.cache_seconds, show_detail=self.show_detail,
                       detail_interval=self.detail_interval_seconds, job_filters=self.job_filters,
                       per_job=self.per_job_metrics, intervals=self.intervals(),
                       workers=len(self.targets) or MAX_WORKERS)

    def reads(self, resource: Resource) -> bool:
        """Whether ``resource`` is read: its switch's setting (always, without a switch)."""
        return resource.switch is None or bool(getattr(self, switch_fields(resource.switch)[0]))

    def intervals(self) -> dict[str, float]:
        """Each switched resource's interval, by name."""
        return {r.name: float(getattr(self, switch_fields(r.switch)[1])) for r in REGISTERED if r.switch is not None}

    @model_validator(mode="after")
    def _validate_together(self) -> Settings:
        # ConfigError is not a ValueError, so pydantic lets it through as it is.
        self._cross_rules()
        return self

    def _cross_rules(self) -> None:
        """Rules that span several settings. Raises ConfigError naming the variable to set."""
        for region, _ in self.project_entries:
            try:
                dli_endpoint(region, self.endpoint)
            except NoEndpoint as exc:
                if not region or self.endpoint:
                    setting = ENV_PREFIX + "REGION"
                elif region == self.sdk_region and not self.region:
                    setting = "HUAWEICLOUD_SDK_REGION"
                else:
                    setting = ENV_PREFIX + ("REGION" if region == self.region else "PROJECT_IDS")
                raise ConfigError(setting, str(exc)) from None
        if self.iam_username is not None:
            self._iam_rules()
            return
        if self.ak is None and self.sk is None:
            raise ConfigError(
                "HUAWEICLOUD_SDK_AK",
                "no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or DLI_EXPORTER_IAM_USERNAME",
            )
        if self.ak is None:
            raise ConfigError("HUAWEICLOUD_SDK_AK", "required with HUAWEICLOUD_SDK_SK")
        if self.sk is None:
            raise ConfigError("HUAWEICLOUD_SDK_SK", "required with HUAWEICLOUD_SDK_AK")

    def _iam_rules(self) -> None:
        try:
            if not self._logins_at_global_iam:
                iam_endpoint(self.effective_region, self.iam_endpoint)
            unreachable = None
        except NoEndpoint as exc:
            unreachable = str(exc)
        if unreachable is not None and self.effective_region is not None:
            raise ConfigError(ENV_PREFIX + "REGION" if self.region else "HUAWEICLOUD_SDK_REGION", unreachable)
        if self.iam_password is None:
            raise ConfigError(ENV_PREFIX + "IAM_PASSWORD", "required with DLI_EXPORTER_IAM_USERNAME")
        if self.iam_domain is None:
            raise ConfigError(ENV_PREFIX + "IAM_DOMAIN", "required with DLI_EXPORTER_IAM_USERNAME (the account name)")
        if unreachable is not None:
            raise ConfigError(ENV_PREFIX + "IAM_ENDPOINT", unreachable)


def switch_fields(switch: Switch) -> tuple[str, str]:
    """The field names of a switch's two settings (``DLI_EXPORTER_QUEUES`` is ``queues``)."""
    return switch.enabled.lower(), switch.interval.lower()


def _switched_settings() -> type[Settings]:
    """:class:`Settings` with the two settings of each registered resource's switch added."""
    fields: dict[str, Any] = {}
    for resource in REGISTERED:
        if resource.switch is not None:
            enabled, interval = switch_fields(resource.switch)
            fields[enabled] = (bool, resource.switch.default_enabled)
            fields[interval] = (float, Field(resource.switch.default_interval, ge=0, le=86400))
    return create_model("Settings", __base__=Settings, __module__=__name__, **fields)


SWITCHED = _switched_settings()  # what load_settings builds
