"""The bot's OAuth scopes: the ones it asks Slack for, and the ones each Web API method needs.

It owns two facts and nothing else (pure data, no I/O):

- `BOT_SCOPES`, exactly the bot scopes of both app manifests (`manifests/slack-app.yaml`,
  `manifests/slack-app.socket-mode.yaml`; `tests/unit/test_manifest.py` holds them equal), so
  least privilege is one reviewed list;
- `METHOD_SCOPES`, for each Web API method the bot (or the Slack stand-in) calls, the scopes
  that allow it: any one of them suffices; an empty tuple means the method needs none.

Source: Slack's method reference (docs.slack.dev/reference/methods, "Required scopes") and
Slack's rate-limit and scope documentation. Where a method has one scope per kind of conversation
(`channels:*` for public channels, `groups:*` for private ones), both are listed public first,
and the one Slack asks for is that of the conversation's kind.
"""

from __future__ import annotations

BOT_SCOPES: tuple[str, ...] = (
    "commands",
    "chat:write",
    "channels:join",
    "files:write",
    "users:read",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
)
"""The bot scopes the app asks for, in the manifests' order."""

METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.connections.open": (),  # an app-level token's connections:write, not a bot scope
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.join": ("channels:join",),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "users.info": ("users:read",),
    "users.conversations": ("channels:read", "groups:read"),
    "views.publish": (),
    "chat.getPermalink": (),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}
"""Web API method → the scopes that allow it (any one suffices; empty: none needed)."""
