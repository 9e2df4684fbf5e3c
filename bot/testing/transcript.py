"""Plain-text transcripts of what the Slack stand-in received, as a reader would see it.

It owns the terminal rendering of Block Kit and mrkdwn used by the `demo` command and by test
failure messages: channels, threads, edits, broadcasts, uploaded files, ephemeral responses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bot.testing.slack_stand_in import Ephemeral, PostedMessage, SlackStandIn, UploadedFile

REPLY_INDENT = "    "
_CONTINUATION = REPLY_INDENT + "  "
_DIVIDER = "─" * 40
_PREFORMATTED = "  │ "
_TOKEN = re.compile(r"<([^<>\n]*)>")

_Item = PostedMessage | UploadedFile | Ephemeral


def render_conversation(slack: SlackStandIn) -> str:
    """Every channel's messages with their threads, then the responses only the user saw."""
    by_channel: dict[str, list[_Item]] = {}
    top_items: list[_Item] = [
        *(m for m in slack.messages if m.thread_ts is None),
        *(f for f in slack.files if f.channel is not None and f.thread_ts is None),
        *(e for e in slack.ephemerals if e.channel is not None),
    ]
    for item in sorted(top_items, key=lambda i: i.at):
        by_channel.setdefault(item.channel or "", []).append(item)

    sections: list[str] = []
    for channel, items in by_channel.items():
        rendered = [_render_top_level(slack, item) for item in items]
        sections.append(_heading(f"#{channel}") + "\n" + "\n\n".join(rendered))
    responses = [e for e in slack.ephemerals if e.channel is None]
    if responses:
        rendered = [_render_ephemeral(e) for e in sorted(responses, key=lambda e: e.at)]
        sections.append(_heading("Responses to the user") + "\n" + "\n\n".join(rendered))
    if not sections:
        return "(nothing was sent to Slack)\n"
    return "\n\n".join(sections) + "\n"


def render_blocks(blocks: list[dict[str, Any]], text: str) -> str:
    """A message's blocks as terminal text; its `text` when it has no blocks."""
    if not blocks:
        return render_mrkdwn(text)
    return "\n".join(line for block in blocks if (line := _render_block(block)))


def render_mrkdwn(text: str) -> str:
    """Slack mrkdwn as displayed: dates, mentions and links resolved, `& < >` unescaped."""
    resolved = _TOKEN.sub(_render_token, text)
    return resolved.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- conversation --------------------------------------------------------------------------


def _heading(title: str) -> str:
    return f"{title}\n{'═' * len(title)}"


def _render_top_level(slack: SlackStandIn, item: _Item) -> str:
    if isinstance(item, Ephemeral):
        return _render_ephemeral(item)
    if isinstance(item, UploadedFile):
        return _render_file(item)
    lines = [_render_message(item)]
    replies: list[PostedMessage | UploadedFile] = [
        *slack.thread(item.ts),
        *(f for f in slack.files if f.thread_ts == item.ts and f.channel == item.channel),
    ]
    for reply in sorted(replies, key=lambda r: _ts_key(r.ts)):
        if isinstance(reply, UploadedFile):
            lines.append(REPLY_INDENT + _render_file(reply))
        else:
            lines.append(_indent(_render_message(reply), REPLY_INDENT + "↳ ", _CONTINUATION))
    return "\n".join(lines)


def _render_message(message: PostedMessage) -> str:
    lines = [render_blocks(message.blocks, message.text)]
    if message.reply_broadcast:
        lines.append("(also sent to the channel)")
    if message.updates:
        lines.append("(edited)")
    return "\n".join(lines)


def _render_file(file: UploadedFile) -> str:
    line_count = len(file.content.decode("utf-8", "replace").splitlines())
    plural = "" if line_count == 1 else "s"
    rendered = f"📎 {file.filename} ({line_count} line{plural})"
    if file.initial_comment:
        rendered += " — " + " ".join(render_mrkdwn(file.initial_comment).splitlines())
    return rendered


def _render_ephemeral(ephemeral: Ephemeral) -> str:
    if ephemeral.delete_original:
        return "[deleted the original message]"
    marker = (
        "[sent to the channel]"
        if ephemeral.response_type == "in_channel"
        else "[only visible to you]"
    )
    if ephemeral.replace_original:
        marker += " (replaces the original)"
    return _indent(render_blocks(ephemeral.blocks, ephemeral.text), marker + " ", "  ")


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0], *(rest + line if line else line for line in lines[1:])])


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int(fraction or 0)


# -- Block Kit -----------------------------------------------------------------------------


def _render_block(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        title = _plain(block.get("text"))
        return f"{title}\n{'‾' * len(title)}"
    if kind == "section":
        return _render_section(block)
    if kind == "context":
        return " · ".join(_render_element(e) for e in block.get("elements", []))
    if kind == "rich_text":
        return "\n".join(_render_rich_text(e) for e in block.get("elements", []))
    if kind == "actions":
        return " ".join(_render_element(e) for e in block.get("elements", []))
    if kind == "divider":
        return _DIVIDER
    if kind == "markdown":
        return str(block.get("text", ""))
    if kind == "image":
        return f"[image: {block.get('alt_text', '')}]"
    return f"[{kind} block]"


def _render_section(block: dict[str, Any]) -> str:
    lines: list[str] = []
    if block.get("text"):
        lines.append(_text_object(block["text"]))
    for field in block.get("fields", []):
        lines.append(_render_field(field))
    if block.get("accessory"):
        lines.append(_render_element(block["accessory"]))
    return "\n".join(lines)


def _render_field(field: dict[str, Any]) -> str:
    """A field written `*Label*\\nvalue` reads as `Label: value`."""
    rendered = _text_object(field)
    label, newline, value = rendered.partition("\n")
    if not newline:
        return rendered
    label = label.strip().strip("*_").strip().removesuffix(":")
    return f"{label}: {value}"


def _render_element(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind in ("mrkdwn", "plain_text"):
        return _text_object(element)
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind == "button":
        return f"[{_plain(element.get('text'))}]"
    if isinstance(kind, str) and kind.endswith("_select"):
        shown = _plain(element.get("placeholder")) or _plain(
            (element.get("initial_option") or {}).get("text")
        )
        return f"[Select: {shown or '…'}]"
    if kind == "overflow":
        return "[⋯]"
    return f"[{kind}]"


def _render_rich_text(element: dict[str, Any]) -> str:
    kind = element.get("type")
    inline = "".join(_render_inline(e) for e in element.get("elements", []))
    if kind == "rich_text_preformatted":
        return "\n".join(_PREFORMATTED + line for line in inline.split("\n"))
    if kind == "rich_text_quote":
        return "\n".join("> " + line for line in inline.split("\n"))
    if kind == "rich_text_list":
        indent = "  " * int(element.get("indent", 0))
        items = [_render_rich_text(item) for item in element.get("elements", [])]
        if element.get("style") == "ordered":
            return "\n".join(f"{indent}{n}. {item}" for n, item in enumerate(items, start=1))
        return "\n".join(f"{indent}• {item}" for item in items)
    return inline


def _render_inline(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind == "text":
        return str(element.get("text", ""))
    if kind == "link":
        return str(element.get("text") or element.get("url", ""))
    if kind == "user":
        return f"@{element.get('user_id', '')}"
    if kind == "channel":
        return f"#{element.get('channel_id', '')}"
    if kind == "usergroup":
        return f"@{element.get('usergroup_id', '')}"
    if kind == "broadcast":
        return f"@{element.get('range', '')}"
    if kind == "emoji":
        return f":{element.get('name', '')}:"
    if kind == "date":
        return str(element.get("fallback") or _utc(element.get("timestamp")))
    return ""


def _text_object(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    if obj.get("type") == "mrkdwn":
        return render_mrkdwn(str(obj.get("text", "")))
    return str(obj.get("text", ""))


def _plain(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


# -- mrkdwn --------------------------------------------------------------------------------


def _render_token(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("!date^"):
        return label or _utc(target.split("^")[1])
    if target.startswith("@"):
        return "@" + target[1:]
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!subteam^"):
        return label or "@" + target.removeprefix("!subteam^")
    if target.startswith("!"):
        return "@" + target[1:]
    return f"{label} ({target})" if label else target


def _utc(epoch_seconds: Any) -> str:
    try:
        moment = datetime.fromtimestamp(int(epoch_seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return str(epoch_seconds)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
