"""The bot's settings: the one place that reads the environment (and `.env`).

Every setting (README "Configuration", `.env.example`) is a field named after it in lower case.
Every bad or missing value is a line of one `ConfigError`, each naming its variable (all of
them at once, so an operator fixes them in one go); secrets are `SecretStr` and never appear in
a message, a repr or a log line.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CLUSTER_CONCURRENCY = 48
"""Cluster requests in flight at once during a digest run. Chosen by `bench/digest_run.py
--concurrency C` (500 and 5,000 algorithms, 50 ms each, 2 cores): at 10,000 subscriptions a
run takes 9.3 s at 32, 6.7 s at 48 and 6.2 s at 64, where it is bound by the process's CPU (the
HTTP client's most of all), not by waiting on the cluster, and the answers waiting their turn
take the peak memory over 143 MiB (157 MiB at 64, 131 at 48)."""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]

# What a malformed value of each variable should have been; "required" is said for a missing one.
_PROBLEMS: dict[str, str] = {
    "slack_api_url": "must be an http:// or https:// URL, e.g. https://slack.com/api/",
    "algorithmia_api_url": "must be an http:// or https:// URL, e.g. https://api.algorithmia.com",
    "algorithmia_web_url": "must be an http:// or https:// URL, e.g. https://algorithmia.com",
    "show_input": "must be true or false",
    "digest_tick_seconds": "must be a whole number of seconds, at least 1",
    "cluster_concurrency": "must be a whole number from 1 to 256",
    "port": "must be an integer from 0 to 65535",
    "log_level": "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "log_format": "must be text or json",
    "slack_bot_token": "must be the app's bot token (xoxb-…), not a user or app-level token",
    "slack_app_token": "must be an app-level token (xapp-…)",
}
DATABASE_URL_FORMS: Final = "sqlite:///path/to/file.db or postgresql://user@host:5432/database"
DATABASE_DRIVERS: Final[dict[str, tuple[str, ...]]] = {
    "sqlite": ("", "aiosqlite"),
    "postgresql": ("", "asyncpg"),
    "postgres": ("", "asyncpg"),
}
"""The `DATABASE_URL` schemes the store opens (`bot.store.engine` reads this table too):
`backend` or `backend+driver`."""
_PROBLEMS["database_url"] = f"must be {DATABASE_URL_FORMS}"
_NO_CREDENTIAL = "ALGORITHMIA_API_KEY: required (or set ALGORITHMIA_JWT instead)"
_BOTH_CREDENTIALS = "ALGORITHMIA_API_KEY and ALGORITHMIA_JWT: set only one of them"
# Error types raised by the validators whose problem is the same whatever the variable.
_PROBLEM_FOR_TYPE: dict[str, str] = {
    "url_credentials": "must not contain a user name or password",
}


# The mapping `load_settings(env)` reads instead of `os.environ`, for the duration of that call.
_given_environment: ContextVar[Mapping[str, str] | None] = ContextVar(
    "given_environment", default=None
)
# The values the sources gave, before validation (filled for `load_settings`, which tells from
# them what is missing even when other values are malformed).
_given_values: ContextVar[dict[str, Any] | None] = ContextVar("given_values", default=None)


class ConfigError(Exception):
    """Settings are missing or malformed: `problems` has one line per variable, `VARIABLE:
    problem`; `str()` is those lines."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """The settings of `.env.example`, validated. Immutable once loaded."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        # `VAR=` (as docker compose writes an unset `${VAR}`) means unset, not "".
        env_ignore_empty=True,
        # `.env` and the environment hold other programs' variables too.
        extra="ignore",
        frozen=True,
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    algorithmia_api_url: str
    algorithmia_api_key: SecretStr | None = None
    algorithmia_jwt: SecretStr | None = None
    database_url: str = "sqlite:///algo-errors.db"
    show_input: bool = False
    digest_tick_seconds: int = Field(default=30, ge=1)
    cluster_concurrency: int = Field(default=CLUSTER_CONCURRENCY, ge=1, le=256)
    port: int = Field(default=3000, ge=0, le=65535)
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"
    """`text` reads well in a terminal; `json` is one object per line, for a log collector."""
    algorithmia_web_url: str | None = None
    """The cluster's web console, for links; unset: derived from the API URL (`web_url`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the environment (or the mapping given to `load_settings`) and `.env`; no secrets dir.
        environment = _given_environment.get()
        if environment is not None:
            env_settings = _MappingSource(settings_cls, environment)
        return init_settings, env_settings, dotenv_settings

    @field_validator("slack_api_url", "algorithmia_api_url", "algorithmia_web_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:  # ALGORITHMIA_WEB_URL unset: derived (`web_url`)
            return None
        parts = urlsplit(value)
        if "@" in parts.netloc:
            # `http://user:password@host`: credentials belong in their own variables. A custom
            # error so the one-line message can say so (it never repeats the value).
            raise PydanticCustomError("url_credentials", "URL with credentials")
        _ = parts.port  # raises ValueError on a port that is not a number
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or parts.query
            or parts.fragment
            or any(character.isspace() or character in "<>|" for character in value)
        ):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _with_trailing_slash(cls, value: str) -> str:
        # slack-sdk appends the method name ("chat.postMessage") to its base_url as is.
        return value.rstrip("/") + "/"

    @field_validator("algorithmia_api_url", "algorithmia_web_url")
    @classmethod
    def _without_trailing_slash(cls, value: str | None) -> str | None:
        # Routes are written "/v1/…" (and pages "/algorithms/…") after it.
        return value.rstrip("/") if value is not None else None

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "algorithmia_api_key",
        "algorithmia_jwt",
        mode="before",
    )
    @classmethod
    def _strip_secret(cls, value: object) -> object:
        # A secret mounted from a file often ends in a newline, which no HTTP header may carry;
        # one that is only blanks is as unset as an empty one.
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        # The store checks the rest (an in-memory SQLite, a malformed PostgreSQL address) when
        # it opens; a scheme it has no driver for is told here, with the other settings.
        scheme, separator, _ = value.partition("://")
        backend, _, driver = scheme.partition("+")
        if not separator or driver not in DATABASE_DRIVERS.get(backend, ()):
            raise ValueError("unsupported database URL")
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A user token (xoxp-) would act as a person; an app-level one (xapp-) calls nothing.
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("not a bot token")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("not an app-level token")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _noted(cls, data: Any) -> Any:
        given = _given_values.get()
        if given is not None and isinstance(data, dict):
            given.update(data)
        return data

    @property
    def web_url(self) -> str:
        """The console the links point to: `ALGORITHMIA_WEB_URL`, else the API URL with a
        leading `api.` dropped from its host (`https://api.example.com` → `https://example.com`)
        and the API's version from its path (`…/v1`, which the client also drops)."""
        if self.algorithmia_web_url is not None:
            return self.algorithmia_web_url
        parts = urlsplit(self.algorithmia_api_url)
        host = parts.netloc.removeprefix("api.")
        path = parts.path.rstrip("/").removesuffix("/v1")
        return urlunsplit((parts.scheme, host, path, "", "")).rstrip("/")

    @property
    def socket_mode(self) -> bool:
        """Slack traffic comes over Socket Mode (SLACK_APP_TOKEN is set) instead of HTTP."""
        return self.slack_app_token is not None

    def authorization_header(self) -> str:
        """The `Authorization` header value for every request to the cluster."""
        if self.algorithmia_api_key is not None:
            return f"Simple {self.algorithmia_api_key.get_secret_value()}"
        if self.algorithmia_jwt is not None:
            return f"Bearer {self.algorithmia_jwt.get_secret_value()}"
        # Only reachable through `model_construct`, which skips validation.
        raise ConfigError(_NO_CREDENTIAL)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A PostgreSQL URL may carry a password; SecretStr fields already print as '**********'.
        for name, value in super().__repr_args__():
            yield name, _without_password(value) if name == "database_url" else value


class _Default(enum.Enum):
    ENV_FILE = ".env"


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    env_file: str | Literal[_Default.ENV_FILE] | None = _Default.ENV_FILE,
    command: str | None = None,
) -> Settings:
    """Read and validate the settings, or raise `ConfigError` with every problem found.

    Without `env`: the process environment, then `env_file` (default `.env` in the working
    directory; `None` for none) for what the environment does not set. With `env` (tests): that
    mapping instead of the process environment, and no `.env` unless `env_file` names one.

    With `command` (`serve`, `digest`): the Slack settings it cannot do without are required
    too, and reported with the others.
    """
    if env_file is _Default.ENV_FILE:
        env_file = ".env" if env is None else None
    given: dict[str, Any] = {}
    tokens = _given_environment.set(env), _given_values.set(given)
    try:
        try:
            settings: Settings | None = Settings(_env_file=env_file)
            problems: dict[str, str] = {}
        except UnicodeDecodeError:
            raise ConfigError(f"{env_file}: not UTF-8 text; save it as UTF-8") from None
        except ValidationError as error:
            # `from None` below: the ValidationError would carry the rejected input into
            # tracebacks.
            settings, problems = None, _problems(error)
        # Checked on the values as given, so they are told beside malformed ones.
        problems.update(_credential_problems(given))
        if command is not None:
            problems.update(missing_for(command, given))
        if problems:
            order = list(Settings.model_fields)
            ordered = sorted(problems, key=lambda v: order.index(v.lower()))
            raise ConfigError(*(problems[v] for v in ordered)) from None
        assert settings is not None
        return settings
    finally:
        _given_values.reset(tokens[1])
        _given_environment.reset(tokens[0])


def require(settings: Settings, command: str, *variables: str) -> None:
    """Raise `ConfigError` naming each of `variables` (upper case) that is unset."""
    missing = []
    for variable in variables:
        field = variable.lower()
        if field not in Settings.model_fields:
            raise ValueError(f"{variable} is not a setting")
        if getattr(settings, field) is None:
            missing.append(f"{variable}: required by {command}")
    if missing:
        raise ConfigError(*missing)


def _given(values: Mapping[str, Any], variable: str) -> bool:
    """Set to something other than blanks (a blank secret is as unset as an empty one)."""
    value = values.get(variable.lower())
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _credential_problems(given: Mapping[str, Any]) -> dict[str, str]:
    key, jwt = _given(given, "ALGORITHMIA_API_KEY"), _given(given, "ALGORITHMIA_JWT")
    if key and jwt:
        return {"ALGORITHMIA_API_KEY": _BOTH_CREDENTIALS}
    return {} if key or jwt else {"ALGORITHMIA_API_KEY": _NO_CREDENTIAL}


def missing_for(command: str, given: Mapping[str, Any]) -> dict[str, str]:
    """The Slack settings `command` cannot do without, where unset in `given` (fields by
    name: the values as read, or a `Settings`' `model_dump()`)."""
    needed = ["SLACK_BOT_TOKEN"] if command in ("serve", "digest") else []
    if command == "serve" and not _given(given, "SLACK_APP_TOKEN"):
        needed.append("SLACK_SIGNING_SECRET")  # HTTP mode verifies every request with it
    missing = {v: f"{v}: required by {command}" for v in needed if not _given(given, v)}
    if "SLACK_SIGNING_SECRET" in missing:
        missing["SLACK_SIGNING_SECRET"] += " over HTTP (or set SLACK_APP_TOKEN for Socket Mode)"
    return missing


def _problems(error: ValidationError) -> dict[str, str]:
    """One line per variable, the first problem of each."""
    problems: dict[str, str] = {}
    for found in error.errors(include_url=False, include_input=False, include_context=False):
        field = str(found["loc"][0])
        if found["type"] == "missing":
            problem = "required"
        else:
            problem = _PROBLEM_FOR_TYPE.get(found["type"]) or _PROBLEMS.get(field, "is not valid")
        problems.setdefault(field.upper(), f"{field.upper()}: {problem}")
    return problems


def _without_password(url: object) -> object:
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "***"  # cannot tell where a password would be: hide it all
    if password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class _MappingSource(PydanticBaseSettingsSource):
    """Variables from a given mapping, read like the environment: any case, empty = unset."""

    def __init__(self, settings_cls: type[BaseSettings], environment: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._values = {name.lower(): value for name, value in environment.items() if value}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {
            name: self._values[name]
            for name in self.settings_cls.model_fields
            if name in self._values
        }
