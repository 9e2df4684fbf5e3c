"""The Slack stand-in's Home tab and memberships: `views.publish`, `users.conversations` with
each user's own channels, and `chat.getPermalink`.

Source: Slack's documentation of the Home tab, views.publish and users.conversations.
`views.publish` takes a `home` view of at most 100 blocks and refuses a `hash` that is not the
current view's with `hash_conflict`; it answers the view with a new `hash`.
`users.conversations` with a bot token lists the user's public channels and, of the private
ones, those the bot is in too, paged by `cursor`. `chat.getPermalink` answers
`message_not_found` for a message it does not hold.
"""

from __future__ import annotations

import uuid
from typing import Any

from bot.testing.slack_records import TEAM_DOMAIN, PostedMessage, Refusal
from bot.testing.slack_requests import text_param

MAX_VIEW_BLOCKS = 100


class HomeAndMemberships:
    """Mixin of `SlackStandIn`: the users' channels and their published Home tabs."""

    # Owned and initialised by `SlackStandIn`.
    members: set[str]
    public_channels: set[str]
    private_channels: set[str]
    archived_channels: set[str]
    messages: list[PostedMessage]
    memberships: dict[str, set[str]] | None
    """User → the channels they are in; None: every user is in every channel."""
    home_views: dict[str, dict[str, Any]]
    """User → their Home tab as last published (with its `id` and `hash`)."""

    def channels_of_user(self, user: str) -> set[str]:
        everything = self.public_channels | self.private_channels
        return set(everything if self.memberships is None else self.memberships.get(user, ()))

    def _users_conversations(self, params: dict[str, Any]) -> dict[str, Any]:
        user = text_param(params, "user")
        if not user:
            raise Refusal("user_not_found")
        visible = [
            channel
            for channel in sorted(self.channels_of_user(user))
            if channel in self.public_channels
            or (channel in self.private_channels and channel in self.members)
        ]
        if str(params.get("exclude_archived", "")).lower() in ("true", "1"):
            visible = [c for c in visible if c not in self.archived_channels]
        limit = int(text_param(params, "limit") or 100)
        start = int(text_param(params, "cursor") or 0)
        page = visible[start : start + limit]
        following = str(start + limit) if start + limit < len(visible) else ""
        return {
            "channels": [{"id": channel, "is_private": channel in self.private_channels}
                         for channel in page],
            "response_metadata": {"next_cursor": following},
        }  # fmt: skip

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = text_param(params, "user_id")
        view = params.get("view")
        if not user or not isinstance(view, dict) or view.get("type") != "home":
            raise Refusal("invalid_arguments")
        blocks = view.get("blocks") or []
        if len(blocks) > MAX_VIEW_BLOCKS:
            raise Refusal("invalid_blocks")
        ids = [b.get("block_id") for b in blocks if b.get("block_id")]
        if len(ids) != len(set(ids)):
            raise Refusal("invalid_blocks")
        current = self.home_views.get(user)
        given = text_param(params, "hash")
        if given and current is not None and given != current["hash"]:
            raise Refusal("hash_conflict")
        published = dict(view) | {
            "id": current["id"] if current else f"V{uuid.uuid4().hex[:10].upper()}",
            "hash": uuid.uuid4().hex,
        }
        self.home_views[user] = published
        return {"view": published}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = text_param(params, "channel")
        ts = text_param(params, "message_ts")
        if (
            not channel
            or not ts
            or not any(m.channel == channel and m.ts == ts for m in self.messages)
        ):
            raise Refusal("message_not_found")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"channel": channel, "permalink": link}
