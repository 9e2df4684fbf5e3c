"""The Slack app manifests: valid for Slack, least privilege, and the two modes in step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.slack.scopes import BOT_SCOPES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "tests" / "data" / "slack-manifest.schema.json"
HTTP_MANIFEST = ROOT / "manifests" / "slack-app.yaml"
SOCKET_MODE_MANIFEST = ROOT / "manifests" / "slack-app.socket-mode.yaml"
MANIFESTS = [
    pytest.param(HTTP_MANIFEST, id="http"),
    pytest.param(SOCKET_MODE_MANIFEST, id="socket-mode"),
]


def load(path: Path) -> dict[str, Any]:
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(manifest, dict)
    return manifest


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(validator: jsonschema.Draft7Validator, manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


def urls(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (where, value) in the manifest whose key names a URL."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in {"url", "request_url", "redirect_urls"} or key.endswith("_url"):
                yield where, str(item)
            else:
                yield from urls(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from urls(item, f"{path}[{index}]")


@pytest.mark.parametrize("path", MANIFESTS)
def test_the_manifest_is_valid_for_slack(validator: jsonschema.Draft7Validator, path: Path) -> None:
    assert schema_errors(validator, load(path)) == []


@pytest.mark.parametrize("path", MANIFESTS)
def test_the_one_slash_command_is_algo_errors(path: Path) -> None:
    commands = load(path)["features"]["slash_commands"]

    assert [command["command"] for command in commands] == ["/algo-errors"]
    assert commands[0]["should_escape"] is True, "mentions must arrive as <@U…|name> (ids)"


@pytest.mark.parametrize("path", MANIFESTS)
def test_the_usage_hint_shows_the_query_and_help(path: Path) -> None:
    (command,) = load(path)["features"]["slash_commands"]

    for word in ("owner/name", "since:", "subscribe", "weekdays:", "tz:", "min:", "unsubscribe",
                 "list", "help"):  # fmt: skip
        assert word in command["usage_hint"]
    assert len(command["usage_hint"]) <= 1000


@pytest.mark.parametrize("path", MANIFESTS)
def test_the_long_description_tells_both_features(path: Path) -> None:
    long_description = load(path)["display_information"]["long_description"]
    assert "/algo-errors owner/name" in long_description
    assert "id:UUID" in long_description
    assert "/algo-errors subscribe" in long_description
    assert 175 <= len(long_description) <= 4000


@pytest.mark.parametrize("path", MANIFESTS)
def test_the_bot_asks_for_the_least_privilege_scopes(path: Path) -> None:
    scopes = load(path)["oauth_config"]["scopes"]

    # Each scope is justified in the manifest; `bot.slack.scopes.BOT_SCOPES` pins the list, so
    # changing it is a reviewed change.
    assert tuple(scopes["bot"]) == BOT_SCOPES
    assert set(scopes) == {"bot"}, "no user scopes, no optional scopes"


@pytest.mark.parametrize("path", MANIFESTS)
def test_the_bot_listens_to_the_home_tab_only_and_has_interactivity(path: Path) -> None:
    manifest = load(path)
    settings = manifest["settings"]

    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert settings["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_the_http_manifest_sends_everything_to_slack_events() -> None:
    manifest = load(HTTP_MANIFEST)
    found = dict(urls(manifest))

    assert manifest["settings"]["socket_mode_enabled"] is False
    assert set(found) == {
        "features.slash_commands[0].url",
        "settings.interactivity.request_url",
        "settings.event_subscriptions.request_url",
    }
    for where, url in found.items():
        assert url.endswith("/slack/events"), where


def test_the_socket_mode_manifest_has_no_urls() -> None:
    manifest = load(SOCKET_MODE_MANIFEST)

    assert manifest["settings"]["socket_mode_enabled"] is True
    assert list(urls(manifest)) == []


def test_the_two_manifests_differ_only_in_the_transport() -> None:
    http = load(HTTP_MANIFEST)
    for command in http["features"]["slash_commands"]:
        del command["url"]
    del http["settings"]["interactivity"]["request_url"]
    del http["settings"]["event_subscriptions"]["request_url"]
    http["settings"]["socket_mode_enabled"] = True

    assert http == load(SOCKET_MODE_MANIFEST)


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ((), "unknown_section"),
        (("settings",), "socket_mode"),  # a plausible typo of socket_mode_enabled
        (("features", "bot_user"), "always_on"),
    ],
)
def test_the_schema_rejects_an_unknown_key(
    validator: jsonschema.Draft7Validator, where: tuple[str, ...], key: str
) -> None:
    manifest = load(HTTP_MANIFEST)
    section = manifest
    for name in where:
        section = section[name]
    section[key] = True

    errors = schema_errors(validator, manifest)

    assert len(errors) == 1
    assert f"'{key}' was unexpected" in errors[0]
