"""The Bolt app: its listeners, and the one place where what they did not expect ends.

`create_app` registers one small listener module per command or action family
(`listeners/`). Each answers Slack from its ack, before the response, and does its work after
it (`listeners.services.AfterAck`). An exception none of them handles ends in
`listeners.services.unexpected` (`app.error` for the acks), which logs the traceback and tells
the user plainly, ephemerally.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.listeners import actions, commands, home
from bot.slack.listeners.services import Respond, Services, unexpected

log = logging.getLogger(__name__)


class Authorization:
    """Who the bot is in its workspace (`auth.test`), remembered: filled by the start-up check,
    so no request waits for it (Bolt would call `auth.test` on the first one)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._result: AuthorizeResult | None = None

    @property
    def client(self) -> AsyncWebClient:
        """The Web API client with the bot token (Bolt's own has none: see `create_app`)."""
        return self._client

    def remember(self, auth_test: Any) -> None:
        self._result = AuthorizeResult.from_auth_test_response(
            bot_token=self._client.token, auth_test_response=auth_test
        )

    @property
    def signed_in(self) -> bool:
        """Slack has answered `auth.test` once."""
        return self._result is not None

    async def authorize(self) -> AuthorizeResult:
        if self._result is None:
            self.remember(await self._client.auth_test())
        assert self._result is not None
        return self._result


def create_app(
    *,
    client: AsyncWebClient,
    signing_secret: str,
    services: Services,
    authorization: Authorization | None = None,
) -> AsyncApp:
    """Build the Bolt app. `client` carries the token, base URL and retry handlers."""
    known = authorization or Authorization(client)

    async def authorize() -> AuthorizeResult:
        return await known.authorize()

    with _environment_token_hidden():
        app = AsyncApp(
            client=_without_token(client),
            signing_secret=signing_secret,
            # Each listener's ack runs before the response and its work after it (`AfterAck`):
            # an ack never waits on Bolt's poll for a background task's answer.
            process_before_response=True,
            # `server.py` verified the signature before Bolt saw the request (Socket Mode
            # traffic needs none): one HMAC per request, not two.
            request_verification_enabled=False,
            authorize=authorize,
        )
    tab = home.HomeTab(services)
    commands.register(app, services)
    actions.register(app, services, tab)
    home.register(app, services, tab)

    @app.error
    async def on_unexpected(error: Exception, body: dict[str, Any], respond: Respond) -> None:
        """What an ack did not expect (the work after it has its own edge, `unexpected`)."""
        await unexpected(services, error, body, respond)

    return app


@contextlib.contextmanager
def _environment_token_hidden() -> Iterator[None]:
    """Bolt reads `SLACK_BOT_TOKEN` from the environment when it is given no token, then
    warns at start that the client's token wins ("`token` will be unused"): the bot's settings
    come from `bot.config` only, so Bolt does not see it."""
    token = os.environ.pop("SLACK_BOT_TOKEN", None)
    try:
        yield
    finally:
        if token is not None:
            os.environ["SLACK_BOT_TOKEN"] = token


def _without_token(client: AsyncWebClient) -> AsyncWebClient:
    """`client` as Bolt copies it to each request (base URL, timeout, retry handlers), with no
    token: `authorize` gives each request the token (given a client with a token and
    `authorize`, Bolt warns at start that it ignores the token)."""
    return AsyncWebClient(
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        session=client.session,
        trust_env_in_session=client.trust_env_in_session,
        headers=client.headers,
        logger=client.logger,
        retry_handlers=client.retry_handlers,
    )
