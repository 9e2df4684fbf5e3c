"""The buttons and selects of an alert parent: resolve (now or in the next version), mute,
reopen; take, assign, hand back (each owner change also told in the thread).

The alert is looked up in the channel the click came from, whatever the payload says, so a
forged value can only name an alert of that channel.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.alerts import OWNER_ACTIONS, AlertAction, AlertRef
from bot.slack.blocks import alerts
from bot.slack.blocks.base import SlackMessage, mention
from bot.slack.listeners.services import Respond, Services, acknowledge, id_in, tell_user
from bot.usecases.alerts import change_alert

log = logging.getLogger(__name__)

_ALERT_ACTIONS = re.compile(
    "^" + re.escape(alerts.ACTION_PREFIX) + "(" + "|".join(a.value for a in AlertAction) + ")$"
)


def _alert_ref(action: dict[str, Any]) -> AlertRef | None:
    """The alert a click names: the button's value, or the select's block id."""
    text = action.get("value") or str(action.get("block_id", "")).removeprefix("alert:")
    return AlertRef.parse(str(text))


def register(app: AsyncApp, services: Services) -> None:
    @app.action(_ALERT_ACTIONS)
    async def on_alert_action(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        await acknowledge(ack)
        channel, user = id_in(body, "channel"), id_in(body, "user")

        async def tell(message: SlackMessage) -> None:
            await tell_user(
                respond, services.sender, channel, user, message, replace_original=False
            )

        verb = AlertAction(str(action["action_id"]).removeprefix(alerts.ACTION_PREFIX))
        ref = _alert_ref(action)
        if ref is None:
            log.warning("%s refused: not an alert key", verb)
            await tell(alerts.alert_unknown())
            return
        option = action.get("selected_option")
        chosen = option.get("value") if isinstance(option, dict) else None
        mute = chosen if isinstance(chosen, str) else None
        selected = action.get("selected_user")
        assignee = selected if isinstance(selected, str) and mention(selected) else None
        change = await change_alert(
            services.store, channel, ref, action=verb, user=user, now=services.now(),
            mute=mute, assignee=assignee,
        )  # fmt: skip
        if change.thread is None:
            await tell(alerts.alert_unknown())
            return
        if change.refused is not None:  # someone acted first: the alert is shown as it is
            await tell(alerts.action_refused(change.refused))
        thread = change.thread
        await services.sender.update(channel, thread.parent_ts, alerts.alert_parent(thread))
        if verb in OWNER_ACTIONS and change.refused is None:
            told = alerts.owner_changed(thread, by=user)
            await services.sender.post(channel, told, thread_ts=thread.parent_ts)
