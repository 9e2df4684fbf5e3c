"""Requests signed the way Slack signs them, for the demo, end-to-end tests and benchmarks."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with `body`: timestamp and `v0=` HMAC-SHA256 signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    return {
        "content-type": "application/x-www-form-urlencoded",
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
