"""Reading the Slack stand-in's requests: merged query, form and JSON parameters, uploaded
bytes, and the text, flag, blocks and metadata parameters as Slack reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import BodyPartReader, web

from bot.testing.slack_limits import check_message
from bot.testing.slack_records import Refusal


async def request_params(request: web.Request) -> dict[str, Any]:
    """Query, form and JSON parameters merged, as Slack accepts any of them."""
    params: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise Refusal("invalid_json") from None
        if not isinstance(body, dict):
            raise Refusal("invalid_json")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = value.file.read()
            else:
                params[key] = value if isinstance(value, str) else bytes(value)
    return params


async def upload_body(request: web.Request) -> bytes:
    """The uploaded bytes: the raw body, or the first part of a multipart body."""
    if request.content_type != "multipart/form-data":
        return await request.read()
    reader = await request.multipart()
    part = await reader.next()
    if isinstance(part, BodyPartReader):
        return bytes(await part.read(decode=True))
    return b""


def text_param(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    return str(value)


def as_flag(value: Any) -> bool:
    """Slack booleans arrive as JSON booleans or as `"1"`/`"true"` in query and form."""
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def as_blocks(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise Refusal("invalid_blocks", ["blocks are not valid JSON"]) from None
    if not isinstance(value, list) or not all(isinstance(block, dict) for block in value):
        raise Refusal("invalid_blocks", ["must be an array of objects [json-pointer:/blocks]"])
    return value


def as_metadata(value: Any) -> dict[str, Any] | None:
    """Message `metadata` as Slack reads it: an object in a JSON body, a JSON string in a form.

    None when absent. Slack refuses with `invalid_metadata_format` anything but
    `{"event_type": non-empty string, "event_payload": object}`; other keys are dropped.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Refusal("invalid_metadata_format") from None
    if not isinstance(value, dict):
        raise Refusal("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise Refusal("invalid_metadata_format")
    return {"event_type": event_type, "event_payload": payload}


def message_content(params: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = text_param(params, "text") or ""
    blocks = as_blocks(params.get("blocks"))
    check_message(text, blocks)
    return text, blocks
