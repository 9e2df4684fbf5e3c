"""Requests signed the way Slack signs them, for the demo, end-to-end tests and benchmarks."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier


def sign(
    secret: str,
    body: str,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """The headers Slack sends with `body`: timestamp and `v0=` HMAC-SHA256 signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": signature,
    }


def slash_command_body(
    text: str,
    *,
    response_url: str,
    command: str = "/algo-errors",
    channel_id: str = "C_GENERAL",
    user_id: str = "U_ALICE",
    team_id: str = "T0001",
) -> str:
    """A form-encoded slash-command payload with the fields Slack sends."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": "acme",
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": "alice",
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    )


def block_actions_body(
    *,
    channel_id: str,
    message_ts: str,
    blocks: list[dict[str, Any]],
    action_id: str,
    user_id: str,
    response_url: str,
    selected: str | None = None,
) -> str:
    """A `block_actions` payload for a click on the element `action_id` of a posted message
    (for a static select, `selected` is the chosen option's value; for a users select, the
    chosen user's id)."""
    block, element = next(
        (block, element)
        for block in blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    )
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block.get("block_id", ""),
        "type": element["type"],
        "action_ts": "1700000000.000001",
    }
    if element["type"] == "button":
        action["value"] = element.get("value", "")
    elif element["type"] == "users_select":
        action["selected_user"] = selected
    else:
        action["selected_option"] = next(o for o in element["options"] if o["value"] == selected)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "alice", "team_id": "T0001"},
        "api_app_id": "A0001",
        "team": {"id": "T0001", "domain": "acme"},
        "enterprise": None,
        "is_enterprise_install": False,
        "container": {
            "type": "message", "message_ts": message_ts, "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": "1.2.3",
        "channel": {"id": channel_id, "name": "general"},
        "message": {"type": "message", "ts": message_ts, "blocks": blocks},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)})


def event_callback(event: dict[str, Any], *, event_id: str = "Ev00000001") -> dict[str, Any]:
    """The Events API envelope Slack wraps an event in (HTTP body, or Socket Mode payload)."""
    return {
        "token": "deprecated-verification-token",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {"enterprise_id": None, "team_id": "T0001", "user_id": "U_BOT",
             "is_bot": True, "is_enterprise_install": False},
        ],
        "is_ext_shared_channel": False,
    }  # fmt: skip


def home_opened_event(user_id: str, view: dict[str, Any] | None) -> dict[str, Any]:
    """`app_home_opened` for the Home tab; `view` (with its `hash`) once one was published."""
    event: dict[str, Any] = {
        "type": "app_home_opened", "user": user_id, "channel": "D_APP_" + user_id,
        "tab": "home", "event_ts": f"{time.time():.6f}",
    }  # fmt: skip
    if view is not None:
        event["view"] = view
    return event


def home_actions_body(*, view: dict[str, Any], action_id: str, value: str, user_id: str) -> str:
    """A `block_actions` payload for a button clicked on the Home tab: a `view` container,
    and no channel, message or `response_url` (Slack sends none from there)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "team": {"id": "T0001", "domain": "acme"},
        "container": {"type": "view", "view_id": view.get("id", "V0001")},
        "trigger_id": "1.2.3",
        "view": view,
        "actions": [
            {"action_id": action_id, "block_id": value[:255], "type": "button",
             "value": value, "action_ts": f"{time.time():.6f}"},
        ],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)})
