"""The buttons and the select of an alert parent: resolve, mute, reopen.

The alert is looked up in the channel the click came from, whatever the payload says, so a
forged value can only name an alert of that channel.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.alerts import AlertAction, IllegalTransition
from bot.slack.blocks import alerts
from bot.slack.blocks.base import SlackMessage
from bot.slack.listeners.services import Respond, Services, acknowledge, tell_user
from bot.usecases.alerts import change_alert

log = logging.getLogger(__name__)

_ALERT_ACTIONS = re.compile(
    "^" + re.escape(alerts.ACTION_PREFIX) + "(" + "|".join(a.value for a in AlertAction) + ")$"
)


class MalformedAction(ValueError):
    """A signed payload that does not carry what an alert action needs."""


def _alert_key(action: dict[str, Any]) -> tuple[str, str]:
    """(algorithm, fingerprint) from the button's value or the select's block id."""
    text = action.get("value") or str(action.get("block_id", "")).removeprefix("alert:")
    try:
        key = json.loads(text)
        return str(key["a"]), str(key["f"])
    except (ValueError, TypeError, KeyError) as error:
        raise MalformedAction(f"not an alert key: {text[:80]!r}") from error


def register(app: AsyncApp, services: Services) -> None:
    @app.action(_ALERT_ACTIONS)
    async def on_alert_action(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        await acknowledge(ack)
        channel = str((body.get("channel") or {}).get("id", ""))
        user = str((body.get("user") or {}).get("id", ""))

        async def tell(message: SlackMessage) -> None:
            await tell_user(
                respond, services.answers, channel, user, message, replace_original=False
            )

        verb = AlertAction(str(action["action_id"]).removeprefix(alerts.ACTION_PREFIX))
        try:
            algorithm, fingerprint = _alert_key(action)
        except MalformedAction as error:
            log.warning("%s refused: %s", verb, error)
            await tell(alerts.alert_unknown())
            return
        mute = (action.get("selected_option") or {}).get("value")
        try:
            changed = await change_alert(
                services.store, channel, algorithm, fingerprint,
                action=verb, user=user, now=services.now(), mute=mute,
            )  # fmt: skip
        except IllegalTransition as refused:  # someone acted first: show the alert as it is
            await tell(alerts.action_refused(str(refused)))
            changed = await services.store.find_alert_thread(channel, algorithm, fingerprint)
        else:
            if changed is None:
                await tell(alerts.alert_unknown())
        if changed is not None:
            await services.answers.update(channel, changed.parent_ts, alerts.alert_parent(changed))
