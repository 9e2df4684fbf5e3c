"""Slack's message and Block Kit limits: what the stand-in refuses, and with which error, as
Slack refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.testing.slack_records import Refusal

MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
# Slack's undocumented ceiling on the characters of all the blocks' text together.
MAX_BLOCKS_TEXT_CHARS = 12_000
BLOCK_TYPES = frozenset(
    {"section", "header", "context", "actions", "divider", "rich_text", "image", "markdown"}
    | {"input", "file", "video"}
)
_TEXT_TYPES = ("mrkdwn", "plain_text")


def check_message(text: str, blocks: list[dict[str, Any]]) -> None:
    """Refuse, as Slack does, a message `text` and `blocks` that Slack would refuse.

    Source: Slack's Web API documentation (the `no_text`, `msg_too_long` and
    `invalid_blocks` errors of chat.postMessage, chat.update and chat.postEphemeral, and the
    undocumented `msg_blocks_too_long` at about 12–13k block characters, slackapi/bolt-js#2509)
    and §8 (message limits); a `block_id` must be unique within the message's blocks (Block Kit
    reference: "unique identifier for a block"; Slack refuses a repeated one).
    `invalid_blocks` lists every problem with a JSON pointer to it.
    """
    if not text and not blocks:
        raise Refusal("no_text")
    if len(text) > MAX_TEXT_CHARS:
        raise Refusal("msg_too_long", [f"text has {len(text)} characters, over {MAX_TEXT_CHARS}"])
    problems: list[str] = []

    def bad(what: str, at: str) -> None:
        problems.append(f"{what} [json-pointer:/blocks{at}]")

    def items(obj: Any, key: str, at: str, low: int = 0, high: int | None = None) -> list[Any]:
        value = obj.get(key, []) if isinstance(obj, dict) else []
        count = len(value) if isinstance(value, list) else -1
        if count < low or (high is not None and count > high):
            most = f" and at most {high}" if high is not None else ""
            bad(f"{key} must have at least {low}{most} items", f"{at}/{key}")
        return value if isinstance(value, list) else []

    def text_object(obj: Any, at: str, limit: int | None, kinds: tuple[str, ...]) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in kinds:
            bad(f"must be a {' or '.join(kinds)} text object", at)
        elif not isinstance(obj.get("text"), str) or not obj["text"].strip():
            bad("text must not be empty or blank", f"{at}/text")
        elif limit is not None and len(obj["text"]) > limit:
            bad(f"text must be at most {limit} characters", f"{at}/text")

    def at_most(obj: Any, key: str, limit: int, at: str) -> None:
        if isinstance(obj, dict) and len(str(obj.get(key, ""))) > limit:
            bad(f"{key} must be at most {limit} characters", f"{at}/{key}")

    def element(e: Any, at: str) -> None:
        at_most(e, "action_id", 255, at)
        if isinstance(e, dict) and e.get("type") == "button":
            text_object(e.get("text"), f"{at}/text", 75, ("plain_text",))
            at_most(e, "value", 2000, at)
        elif isinstance(e, dict) and e.get("type") == "static_select":
            for k, option in enumerate(items(e, "options", at, high=100)):
                text_object(_get(option, "text"), f"{at}/options/{k}/text", 75, _TEXT_TYPES)
                at_most(option, "value", 150, f"{at}/options/{k}")

    if len(blocks) > MAX_BLOCKS:
        bad(f"no more than {MAX_BLOCKS} items allowed", "")
    block_ids: dict[str, int] = {}
    for i, block in enumerate(blocks):
        at, kind = f"/{i}", block.get("type")
        if "block_id" in block:
            first = block_ids.setdefault(str(block["block_id"]), i)
            if first != i:
                bad(f"duplicate block_id, already used by block {first}", f"{at}/block_id")
        if kind not in BLOCK_TYPES:
            bad(f"unknown block type {kind!r}", f"{at}/type")
            continue
        at_most(block, "block_id", 255, at)
        if kind == "header":
            text_object(block.get("text"), f"{at}/text", 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                bad("a section needs text or fields", at)
            if "text" in block:
                text_object(block["text"], f"{at}/text", 3000, _TEXT_TYPES)
            for j, item in enumerate(items(block, "fields", at, high=10)):
                text_object(item, f"{at}/fields/{j}", 2000, _TEXT_TYPES)
            if "accessory" in block:
                element(block["accessory"], f"{at}/accessory")
        elif kind == "context":
            for j, item in enumerate(items(block, "elements", at, 1, 10)):
                if _get(item, "type") != "image":
                    text_object(item, f"{at}/elements/{j}", None, _TEXT_TYPES)
        elif kind == "actions":
            for j, item in enumerate(items(block, "elements", at, 1, 25)):
                element(item, f"{at}/elements/{j}")
        elif kind == "input":
            element(block.get("element"), f"{at}/element")
        elif kind == "rich_text":
            for j, part in enumerate(items(block, "elements", at, 1)):
                if _get(part, "type") in ("rich_text_preformatted", "rich_text_section"):
                    for k, run in enumerate(items(part, "elements", f"{at}/elements/{j}", 1)):
                        if _get(run, "type") == "text" and not _get(run, "text"):
                            bad("text must not be empty", f"{at}/elements/{j}/elements/{k}/text")
    if problems:
        raise Refusal("invalid_blocks", problems)
    total = sum(len(piece) for piece in _block_texts(blocks))
    if total > MAX_BLOCKS_TEXT_CHARS:
        raise Refusal(
            "msg_blocks_too_long",
            [f"blocks have {total} characters of text, over {MAX_BLOCKS_TEXT_CHARS}"],
        )


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _block_texts(value: Any) -> Iterable[str]:
    """Every string under a `text` key in the blocks: text objects and rich text runs."""
    if isinstance(value, list):
        for item in value:
            yield from _block_texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from _block_texts(item)
