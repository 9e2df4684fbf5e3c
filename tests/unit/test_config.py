"""Settings: what an operator sets in the environment or `.env`, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, require

MINIMAL = {"ALGORITHMIA_API_URL": "https://api.example.com", "ALGORITHMIA_API_KEY": "simA1b2"}

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-secret-bot-token",
    "SLACK_SIGNING_SECRET": "secret-signing-8f7e",
    "SLACK_APP_TOKEN": "xapp-secret-app-token",
    "ALGORITHMIA_API_KEY": "simSecretKey123",
}

VARIABLES = [name.upper() for name in Settings.model_fields]


def test_defaults() -> None:
    settings = load_settings(MINIMAL)

    assert settings.slack_bot_token is None
    assert settings.slack_signing_secret is None
    assert settings.slack_app_token is None
    assert not settings.socket_mode
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.algorithmia_jwt is None
    assert settings.database_url == "sqlite:///algo-errors.db"
    assert settings.show_input is False
    assert settings.digest_tick_seconds == 30
    assert settings.port == 3000
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "sign-2",
            "SLACK_APP_TOKEN": "xapp-3",
            "SLACK_API_URL": "http://127.0.0.1:8080/api",
            "ALGORITHMIA_API_URL": "https://cluster.example.com/",
            "ALGORITHMIA_JWT": "eyJ.jwt.sig",
            "DATABASE_URL": "postgresql://bot@db:5432/algo",
            "SHOW_INPUT": "true",
            "DIGEST_TICK_SECONDS": "5",
            "PORT": "0",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": " JSON ",
        }
    )

    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-1"
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == "sign-2"
    assert settings.slack_app_token is not None
    assert settings.slack_app_token.get_secret_value() == "xapp-3"
    assert settings.socket_mode
    assert settings.slack_api_url == "http://127.0.0.1:8080/api/"
    assert settings.algorithmia_api_url == "https://cluster.example.com"
    assert settings.algorithmia_api_key is None
    assert settings.authorization_header() == "Bearer eyJ.jwt.sig"
    assert settings.database_url == "postgresql://bot@db:5432/algo"
    assert settings.show_input is True
    assert settings.digest_tick_seconds == 5
    assert settings.port == 0
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("SLACK_API_URL", "https://slack.com/api", "slack_api_url", "https://slack.com/api/"),
        ("SLACK_API_URL", "https://gov.example/api//", "slack_api_url", "https://gov.example/api/"),
        (
            "ALGORITHMIA_API_URL",
            "https://api.example.com/",
            "algorithmia_api_url",
            "https://api.example.com",
        ),
        (
            "ALGORITHMIA_API_URL",
            "http://10.0.0.5:8080/prefix/",
            "algorithmia_api_url",
            "http://10.0.0.5:8080/prefix",
        ),
        ("SHOW_INPUT", "1", "show_input", True),
        ("SHOW_INPUT", "off", "show_input", False),
        ("SHOW_INPUT", "FALSE", "show_input", False),
        ("PORT", "65535", "port", 65535),
        ("DIGEST_TICK_SECONDS", "1", "digest_tick_seconds", 1),
        ("CLUSTER_CONCURRENCY", "64", "cluster_concurrency", 64),
        ("CLUSTER_CONCURRENCY", "", "cluster_concurrency", 48),
        ("LOG_LEVEL", "Warning", "log_level", "WARNING"),
        ("LOG_LEVEL", "critical", "log_level", "CRITICAL"),
        # Empty means unset (docker compose writes `${VAR}` of an unset variable as "").
        ("PORT", "", "port", 3000),
        ("SLACK_BOT_TOKEN", "", "slack_bot_token", None),
    ],
)
def test_values_are_normalised(variable: str, value: str, field: str, expected: object) -> None:
    settings = load_settings({**MINIMAL, variable: value})

    assert getattr(settings, field) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALGORITHMIA_API_KEY": "simA1b2"}, "ALGORITHMIA_API_URL: required"),
        (
            {"ALGORITHMIA_API_URL": "", "ALGORITHMIA_API_KEY": "simA1b2"},
            "ALGORITHMIA_API_URL: required",
        ),
        (
            {**MINIMAL, "ALGORITHMIA_JWT": "eyJ.jwt.sig"},
            "ALGORITHMIA_API_KEY and ALGORITHMIA_JWT: set only one of them",
        ),
        (
            {"ALGORITHMIA_API_URL": "https://api.example.com"},
            "ALGORITHMIA_API_KEY: required (or set ALGORITHMIA_JWT instead)",
        ),
        ({**MINIMAL, "PORT": "70000"}, "PORT: must be an integer from 0 to 65535"),
        ({**MINIMAL, "PORT": "-1"}, "PORT: must be an integer from 0 to 65535"),
        ({**MINIMAL, "PORT": "http"}, "PORT: must be an integer from 0 to 65535"),
        (
            {**MINIMAL, "DIGEST_TICK_SECONDS": "0"},
            "DIGEST_TICK_SECONDS: must be a whole number of seconds, at least 1",
        ),
        ({**MINIMAL, "SHOW_INPUT": "maybe"}, "SHOW_INPUT: must be true or false"),
        (
            {**MINIMAL, "CLUSTER_CONCURRENCY": "0"},
            "CLUSTER_CONCURRENCY: must be a whole number from 1 to 256",
        ),
        (
            {**MINIMAL, "CLUSTER_CONCURRENCY": "1000"},
            "CLUSTER_CONCURRENCY: must be a whole number from 1 to 256",
        ),
        (
            {**MINIMAL, "LOG_LEVEL": "verbose"},
            "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        ({**MINIMAL, "LOG_FORMAT": "logfmt"}, "LOG_FORMAT: must be text or json"),
        (
            {**MINIMAL, "ALGORITHMIA_API_URL": "api.example.com"},
            "ALGORITHMIA_API_URL: must be an http:// or https:// URL, e.g. https://api.algorithmia.com",
        ),
        (
            {**MINIMAL, "ALGORITHMIA_API_URL": "ftp://api.example.com"},
            "ALGORITHMIA_API_URL: must be an http:// or https:// URL, e.g. https://api.algorithmia.com",
        ),
        (
            {**MINIMAL, "ALGORITHMIA_API_URL": "https://api.example.com:port"},
            "ALGORITHMIA_API_URL: must be an http:// or https:// URL, e.g. https://api.algorithmia.com",
        ),
        (
            {**MINIMAL, "ALGORITHMIA_API_URL": "https://api.example.com/?key=1"},
            "ALGORITHMIA_API_URL: must be an http:// or https:// URL, e.g. https://api.algorithmia.com",
        ),
        (
            {**MINIMAL, "SLACK_API_URL": "https://"},
            "SLACK_API_URL: must be an http:// or https:// URL, e.g. https://slack.com/api/",
        ),
        (
            {**MINIMAL, "ALGORITHMIA_API_URL": "http://bot:pw-in-url@api.example.com"},
            "ALGORITHMIA_API_URL: must not contain a user name or password",
        ),
        (
            {**MINIMAL, "ALGORITHMIA_API_URL": "https://bot@api.example.com:8443/"},
            "ALGORITHMIA_API_URL: must not contain a user name or password",
        ),
        (
            {**MINIMAL, "SLACK_API_URL": "https://proxy:pw-in-url@slack-proxy.example/api/"},
            "SLACK_API_URL: must not contain a user name or password",
        ),
        (
            {**MINIMAL, "DATABASE_URL": "mysql://bot@db/errors"},
            "DATABASE_URL: must be sqlite:///path/to/file.db or postgresql://user@host:5432/database",
        ),
        (
            {**MINIMAL, "DATABASE_URL": "algo-errors.db"},
            "DATABASE_URL: must be sqlite:///path/to/file.db or postgresql://user@host:5432/database",
        ),
        # Several problems: each, one line each, in `.env.example` order.
        (
            {"PORT": "x"},
            "ALGORITHMIA_API_URL: required\n"
            "ALGORITHMIA_API_KEY: required (or set ALGORITHMIA_JWT instead)\n"
            "PORT: must be an integer from 0 to 65535",
        ),
    ],
)
def test_each_bad_setting_is_one_line_naming_its_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)

    assert str(raised.value) == message
    assert raised.value.__suppress_context__, "the ValidationError (with inputs) must not chain"


def test_the_dotenv_file_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / ".env").write_text(
        "# written by the operator\n"
        "ALGORITHMIA_API_URL=https://dotenv.example.com\n"
        "ALGORITHMIA_JWT=eyJ.from.dotenv\n"
        "PORT=4000\n"
        "LOG_LEVEL=error\n"
        "UNRELATED_TOOL_SETTING=ignored\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "5000")

    settings = load_settings()

    assert settings.algorithmia_api_url == "https://dotenv.example.com"
    assert settings.authorization_header() == "Bearer eyJ.from.dotenv"
    assert settings.log_level == "ERROR"
    assert settings.port == 5000, "the environment wins over .env"


def test_a_given_mapping_ignores_dotenv_unless_named(tmp_path: Path) -> None:
    dotenv = tmp_path / "test.env"
    dotenv.write_text("ALGORITHMIA_API_URL=https://dotenv.example.com\nPORT=4000\n")

    assert load_settings(MINIMAL).port == 3000
    with_file = load_settings({**MINIMAL, "PORT": "4500"}, env_file=str(dotenv))
    assert with_file.port == 4500, "the mapping wins over the named file"
    assert load_settings({"ALGORITHMIA_JWT": "j"}, env_file=str(dotenv)).algorithmia_api_url == (
        "https://dotenv.example.com"
    )


def test_a_given_mapping_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "4321")
    monkeypatch.setenv("ALGORITHMIA_JWT", "eyJ.from.environment")

    settings = load_settings(MINIMAL)

    assert settings.port == 3000
    assert settings.algorithmia_jwt is None


@pytest.mark.parametrize(
    ("env", "header"),
    [
        (MINIMAL, "Simple simA1b2"),
        (
            {"ALGORITHMIA_API_URL": "https://api.example.com", "ALGORITHMIA_JWT": "eyJ.a.b"},
            "Bearer eyJ.a.b",
        ),
        # A key mounted from a file keeps its newline; no header may carry one.
        ({**MINIMAL, "ALGORITHMIA_API_KEY": " simA1b2\n"}, "Simple simA1b2"),
        (
            {
                "ALGORITHMIA_API_URL": "https://api.example.com",
                "ALGORITHMIA_API_KEY": " \n",
                "ALGORITHMIA_JWT": "eyJ.a.b\n",
            },
            "Bearer eyJ.a.b",
        ),
    ],
)
def test_authorization_header(env: dict[str, str], header: str) -> None:
    assert load_settings(env).authorization_header() == header


@pytest.mark.parametrize(
    ("key", "jwt", "message"),
    [
        ("simA1b2", "eyJ.a.b", "ALGORITHMIA_API_KEY and ALGORITHMIA_JWT: set only one of them"),
        (None, None, "ALGORITHMIA_API_KEY: required (or set ALGORITHMIA_JWT instead)"),
        (" ", "\n", "ALGORITHMIA_API_KEY: required (or set ALGORITHMIA_JWT instead)"),
    ],
)
def test_the_authorization_needs_exactly_one_credential(
    key: str | None, jwt: str | None, message: str
) -> None:
    env = {"ALGORITHMIA_API_URL": "https://api.example.com"}
    env |= {"ALGORITHMIA_API_KEY": key} if key is not None else {}
    env |= {"ALGORITHMIA_JWT": jwt} if jwt is not None else {}

    with pytest.raises(ConfigError) as raised:
        load_settings(env)

    assert str(raised.value) == message


def test_a_settings_object_without_a_credential_has_no_authorization_header() -> None:
    settings = Settings.model_construct(algorithmia_api_url="https://api.example.com")

    with pytest.raises(ConfigError, match="ALGORITHMIA_API_KEY: required"):
        settings.authorization_header()


def test_secrets_never_show_in_repr_or_str() -> None:
    settings = load_settings(
        {
            **SECRETS,
            "ALGORITHMIA_API_URL": "https://api.example.com",
            "DATABASE_URL": "postgresql://bot:db-password-42@db:5432/algo",
        }
    )

    for text in (repr(settings), str(settings)):
        for secret in [*SECRETS.values(), "db-password-42"]:
            assert secret not in text
    assert "postgresql://bot:***@db:5432/algo" in repr(settings)


@pytest.mark.parametrize(
    "bad",
    [
        {"ALGORITHMIA_JWT": "eyJ.secret.jwt"},
        {"PORT": "xoxb-pasted-into-the-wrong-variable"},
        {"LOG_LEVEL": "simSecretKey123"},
        {"ALGORITHMIA_API_URL": "simSecretKey123"},
        {"ALGORITHMIA_API_URL": "https://bot:url-password-77@api.example.com"},
        {"SLACK_API_URL": "https://proxy:url-password-77@slack-proxy.example/api/"},
    ],
)
def test_secrets_never_show_in_error_messages(bad: dict[str, str]) -> None:
    env = {**SECRETS, "ALGORITHMIA_API_URL": "https://api.example.com", **bad}

    with pytest.raises(ConfigError) as raised:
        load_settings(env)

    message = str(raised.value)
    assert "\n" not in message
    for value in env.values():
        if value != "https://api.example.com":
            assert value not in message
    assert "url-password-77" not in message


def test_settings_cannot_be_changed_after_loading() -> None:
    settings = load_settings(MINIMAL)

    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "variables", "message"),
    [
        (MINIMAL, ("SLACK_BOT_TOKEN",), "SLACK_BOT_TOKEN: required by serve"),
        (
            {**MINIMAL, "SLACK_BOT_TOKEN": "xoxb-1"},
            ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"),
            "SLACK_SIGNING_SECRET: required by serve",
        ),
    ],
)
def test_require_names_the_variable_and_the_command(
    env: dict[str, str], variables: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        require(load_settings(env), "serve", *variables)

    assert str(raised.value) == message


def test_require_passes_when_everything_is_set() -> None:
    settings = load_settings({**MINIMAL, "SLACK_BOT_TOKEN": "xoxb-1"})

    require(settings, "digest", "SLACK_BOT_TOKEN")


def test_require_rejects_a_name_that_is_not_a_setting() -> None:
    with pytest.raises(ValueError, match="SLACK_TOKEN is not a setting"):
        require(load_settings(MINIMAL), "serve", "SLACK_TOKEN")


def test_the_variables_are_those_of_the_interface_in_its_order() -> None:
    assert VARIABLES == [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "ALGORITHMIA_API_URL",
        "ALGORITHMIA_API_KEY",
        "ALGORITHMIA_JWT",
        "DATABASE_URL",
        "SHOW_INPUT",
        "DIGEST_TICK_SECONDS",
        "CLUSTER_CONCURRENCY",
        "PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "ALGORITHMIA_WEB_URL",
    ]


@pytest.mark.parametrize(
    ("environment", "web_url"),
    [
        ({"ALGORITHMIA_API_URL": "https://api.algorithmia.com"}, "https://algorithmia.com"),
        ({"ALGORITHMIA_API_URL": "https://api.ml.example.com/"}, "https://ml.example.com"),
        ({"ALGORITHMIA_API_URL": "http://10.0.0.5:8080"}, "http://10.0.0.5:8080"),  # no api.
        # The API's version is no part of the console's address (the client drops it too).
        ({"ALGORITHMIA_API_URL": "https://api.example.com/v1"}, "https://example.com"),
        ({"ALGORITHMIA_API_URL": "https://gw.example.com/ml/v1/"}, "https://gw.example.com/ml"),
        (
            {
                "ALGORITHMIA_API_URL": "https://api.example.com",
                "ALGORITHMIA_WEB_URL": "https://console.example.com/",
            },
            "https://console.example.com",
        ),
    ],
)
def test_the_console_url_is_derived_from_the_api_url_unless_given(
    environment: dict[str, str], web_url: str
) -> None:
    assert load_settings(MINIMAL | environment).web_url == web_url


@pytest.mark.parametrize("bad", ["console.example.com", "https://x.example.com/a|b", "ftp://x.y"])
def test_a_console_url_that_could_break_a_link_is_a_settings_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^ALGORITHMIA_WEB_URL: must be an http"):
        load_settings(MINIMAL | {"ALGORITHMIA_WEB_URL": bad})


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SLACK_BOT_TOKEN", "xoxp-1234-user-token", "SLACK_BOT_TOKEN: must be the app's bot token"),
        ("SLACK_BOT_TOKEN", "xapp-1-app-token", "SLACK_BOT_TOKEN: must be the app's bot token"),
        ("SLACK_APP_TOKEN", "xoxb-bot-token", "SLACK_APP_TOKEN: must be an app-level token"),
    ],
)
def test_a_token_of_the_wrong_kind_is_a_settings_error_that_never_shows_it(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(MINIMAL | {variable: value})
    assert str(refused.value).startswith(problem)
    assert value not in str(refused.value)


def test_a_command_s_required_settings_are_checked_with_the_others() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"ALGORITHMIA_API_KEY": "k", "ALGORITHMIA_JWT": "j"}, command="digest")
    assert raised.value.problems == (
        "SLACK_BOT_TOKEN: required by digest",
        "ALGORITHMIA_API_URL: required",
        "ALGORITHMIA_API_KEY and ALGORITHMIA_JWT: set only one of them",
    )
    # Socket Mode needs no signing secret; a blank token is no token.
    socket = {**MINIMAL, "SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "  "}
    with pytest.raises(ConfigError) as raised:
        load_settings(socket, command="serve")
    assert raised.value.problems == ("SLACK_BOT_TOKEN: required by serve",)
    assert load_settings({**socket, "SLACK_BOT_TOKEN": "xoxb-1"}, command="serve").socket_mode


def test_a_malformed_setting_stops_every_command_even_one_that_does_not_read_it() -> None:
    """A typo is told at once, whichever command meets it first (`errors` before `serve`)."""
    env = {**MINIMAL, "SLACK_BOT_TOKEN": "xoxp-user", "CLUSTER_CONCURRENCY": "lots"}
    for command in ("errors", "digest", None):
        with pytest.raises(ConfigError) as raised:
            load_settings(env, command=command)
        assert [p.partition(":")[0] for p in raised.value.problems] == [
            "SLACK_BOT_TOKEN",
            "CLUSTER_CONCURRENCY",
        ]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///algo-errors.db", "sqlite+aiosqlite:////data/bot.db",
        "postgresql://bot@db:5432/errors", "postgres://bot@db/errors",
        "postgresql+asyncpg://bot@db/errors",
    ],
)  # fmt: skip
def test_the_database_urls_the_store_opens_are_settings(url: str) -> None:
    assert load_settings({**MINIMAL, "DATABASE_URL": url}).database_url == url
