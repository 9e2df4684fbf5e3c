"""The parts every Slack message is built of: limits, escaping, text objects and blocks.

Pure functions returning plain dicts. Untrusted text (messages, traces, inputs, names) reaches
mrkdwn only escaped; traces and inputs go in rich-text preformatted blocks, which Slack does not
parse for mentions or links. The only mentions written are of ids Slack gave the bot
(`mention`). Every message stays within Slack's limits (50 blocks, 3000 per
section, 150 per header, and well under the ~12k characters Slack accepts across a message's
blocks).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.algorithm_ref import InvalidAlgorithmRef, OwnerName, parse_algorithm_ref
from bot.errors.records import utc_minute

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 3000


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message to send: fallback `text` (used for notifications) and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def escape(text: str) -> str:
    """Escape Slack's control characters (`&` first) so text can never ping, mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_span(text: str) -> str:
    """Text as inline code: escaped, its backticks (which would end the span early and let
    the rest be read as formatting) shown as the look-alike `ˋ`."""
    return "`" + escape(text).replace("`", "\u02cb") + "`"


def cut(text: str, limit: int) -> str:
    """Shorten to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut_escaped(text: str, limit: int) -> str:
    """Escape, then shorten without splitting an entity such as `&amp;`."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    shortened = escaped[: limit - 1]
    amp = shortened.rfind("&", max(0, len(shortened) - 5))
    if amp != -1 and ";" not in shortened[amp:]:
        shortened = shortened[:amp]
    return shortened + "…"


def date_token(epoch_ms: int) -> str:
    """A Slack date token: every reader sees the time in their own time zone."""
    return f"<!date^{epoch_ms // 1000}^{{date_short_pretty}} at {{time}}|{utc_minute(epoch_ms)}>"


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def mrkdwn(text: str) -> dict[str, Any]:
    """Verbatim: Slack then makes no links of bare URLs or `#channel` names in the text, so
    an error message can never make a link; our explicit `<!date…>`/`<@U…>` tokens still work."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(cut(text, MAX_SECTION_TEXT))}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(cut(t, MAX_SECTION_TEXT)) for t in texts]}


def preformatted(text: str) -> Block:
    return {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_preformatted",
                "border": 0,
                "elements": [{"type": "text", "text": text}],
            }
        ],
    }


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def epoch_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


_USER_ID = re.compile(r"^[UW][A-Z0-9_]{1,20}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9_]{1,20}$")


def is_user_id(slack_id: str) -> bool:
    """A Slack user id (`U…`, `W…`), never a user group's."""
    return _USER_ID.match(slack_id) is not None


def mention(slack_id: str) -> str:
    """A mention of a Slack user (`<@U…>`) or user group (`<!subteam^S…>`) by the id Slack
    gave the bot; "" for anything that is not such an id, so nothing else can ever ping."""
    if _USER_ID.match(slack_id):
        return f"<@{slack_id}>"
    if _GROUP_ID.match(slack_id):
        return f"<!subteam^{slack_id}>"
    return ""


def mentions(slack_ids: Sequence[str]) -> str:
    """Several mentions, space-separated (those that are ids)."""
    return " ".join(m for m in map(mention, slack_ids) if m)


def is_owner_name(text: str) -> bool:
    """Whether `text` is a valid `owner/name` (never an id, never anything else)."""
    try:
        return isinstance(parse_algorithm_ref(text), OwnerName)
    except InvalidAlgorithmRef:
        return False


def algorithm_link(algorithm: str, web_url: str | None, limit: int | None = 200) -> str:
    """The algorithm's name, escaped, as a link to its page in the cluster's console when it
    is a valid `owner/name` (the URL is built only from the validated parts); else the text."""
    shown = escape(algorithm) if limit is None else cut_escaped(algorithm, limit)
    if not web_url or not is_owner_name(algorithm):
        return shown
    return f"<{web_url}/algorithms/{algorithm}|{shown}>"
