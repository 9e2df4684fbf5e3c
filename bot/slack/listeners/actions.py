"""The buttons and selects of an alert parent: resolve (now or in the next version), mute,
reopen; take, assign, hand back (each owner change also told in the thread). The Home tab's
take and resolve buttons come here too (their value names the alert's channel).

The alert is looked up in the channel the click came from, whatever the payload says, so a
forged value can only name an alert of that channel; from the Home tab, in the channel the
value names only when the clicking user is a member of it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.domain.alerts import OWNER_ACTIONS, AlertAction, AlertRef
from bot.metrics import Outcome
from bot.slack.blocks import alerts
from bot.slack.blocks.base import SlackMessage, is_user_id
from bot.slack.blocks.home import parse_home_value
from bot.slack.listeners.home import HomeTab
from bot.slack.listeners.services import (
    Handling,
    Respond,
    Services,
    handling,
    id_in,
    tell_user,
    unexpected,
)
from bot.slack.refusals import meaning
from bot.slack.sender import SEND_FAILURES, CannotPost, error_code
from bot.usecases.alerts import AlertChange, change_alert

log = logging.getLogger(__name__)

_ALERT_ACTIONS = re.compile(
    "^" + re.escape(alerts.ACTION_PREFIX) + "(" + "|".join(a.value for a in AlertAction) + ")$"
)


def _alert_ref(action: dict[str, Any]) -> AlertRef | None:
    """The alert a click names: the button's value, or the select's block id."""
    text = action.get("value") or str(action.get("block_id", "")).removeprefix("alert:")
    return AlertRef.parse(str(text))


def register(app: AsyncApp, services: Services, tab: HomeTab) -> None:
    @app.action(_ALERT_ACTIONS)
    async def ack_at_once(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        """A click is acknowledged before anything is done about it (Slack's 3 s)."""
        await ack()
        services.after_ack.start(on_alert_action(body, action, respond))

    async def on_alert_action(
        body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        try:
            await _on_alert_action(services, tab, body, action, respond)
        except Exception as error:  # the edge of the work after the ack
            await unexpected(services, error, body, respond)


async def _on_alert_action(
    services: Services, tab: HomeTab, body: dict[str, Any], action: dict[str, Any], respond: Respond
) -> None:
    channel, user = id_in(body, "channel"), id_in(body, "user")
    action_id = str(action["action_id"])

    def counted(handled: Handling) -> None:
        services.metrics.interactions.labels(action=action_id, outcome=handled.outcome).inc()

    with handling(
        log, "interaction handled", counted, action=action_id, user=user, channel=channel
    ) as handled:
        verb = AlertAction(action_id.removeprefix(alerts.ACTION_PREFIX))
        from_home = parse_home_value(str(action.get("value") or ""))
        if from_home is not None and not channel:
            await _from_home(services, tab, handled, user, verb, *from_home)
            return

        async def tell(message: SlackMessage) -> None:
            handled.outcome = Outcome.REFUSED
            await tell_user(
                respond, services.sender, channel, user, message, replace_original=False
            )

        ref = _alert_ref(action)
        if ref is None:
            log.warning("%s refused: not an alert key", verb)
            await tell(alerts.alert_unknown())
            return
        option = action.get("selected_option")
        chosen = option.get("value") if isinstance(option, dict) else None
        mute = chosen if isinstance(chosen, str) else None
        selected = action.get("selected_user")
        assignee = selected if isinstance(selected, str) and is_user_id(selected) else None
        if assignee is not None and await services.sender.is_person(assignee) is False:
            await tell(alerts.not_a_person(assignee))  # Slack's users select lists bots too
            return
        change, not_shown = await _apply(
            services, channel, ref, verb, user, mute=mute, assignee=assignee
        )
        if change.thread is None:
            await tell(alerts.alert_unknown())
        elif change.refused is not None:  # someone acted first: the alert shows what is true
            await tell(alerts.action_refused(change.refused))
        elif not_shown is not None:  # done: the user hears so, since the alert cannot show it
            said = alerts.change_not_shown(not_shown)
            await tell_user(respond, services.sender, channel, user, said, replace_original=False)


async def _apply(
    services: Services,
    channel: str,
    ref: AlertRef,
    verb: AlertAction,
    user: str,
    *,
    mute: str | None = None,
    assignee: str | None = None,
) -> tuple[AlertChange, str | None]:
    """Change the channel's alert, redraw its parent, and tell an owner change in its thread;
    with why Slack did not show the change, when it did not (the change stays made: the
    alert's message or thread was deleted, the channel closed, Slack did not answer)."""
    change = await change_alert(
        services.store, channel, ref, action=verb, user=user, now=services.now(),
        mute=mute, assignee=assignee,
    )  # fmt: skip
    thread = change.thread
    if thread is None:
        return change, None
    try:
        parent = alerts.alert_parent(thread, web_url=services.web_url)
        await services.sender.update(channel, thread.parent_ts, parent)
        if verb in OWNER_ACTIONS and change.refused is None:
            told = alerts.owner_changed(thread, by=user)
            await services.sender.post(channel, told, thread_ts=thread.parent_ts)
    except (CannotPost, *SEND_FAILURES) as error:
        reason = _not_shown(error)
        log.warning("%s on alert %s made, not shown in Slack: %s", verb, thread.parent_ts, reason)
        return change, reason
    return change, None


def _not_shown(error: Exception) -> str:
    """Why Slack did not show an alert's change, in words its user understands."""
    if isinstance(error, CannotPost):
        return error.reason
    if isinstance(error, SlackApiError):
        known = meaning(error_code(error))
        return known.reason if known is not None else f"Slack refused it ({error_code(error)})"
    return "Slack did not answer"


async def _from_home(
    services: Services,
    tab: HomeTab,
    handled: Handling,
    user: str,
    verb: AlertAction,
    channel: str,
    ref: AlertRef,
) -> None:
    """A take or resolve on the Home tab: only on an alert of a channel the user is in. There
    is no channel to answer in and no `response_url`: the refreshed tab says what happened."""
    handled.bind(channel=channel)
    if not user:
        handled.outcome = Outcome.REFUSED
        return
    notice: str | None = None
    done = False  # a change made that Slack could not show: told, and no refusal
    if verb not in (AlertAction.TAKE, AlertAction.RESOLVE):
        notice = "That action is made on the alert itself, in its channel."
    elif channel not in await tab.channels_of(user, fresh=True):  # authorizing: read it now
        log.warning("%s from the Home tab refused: %s is not in %s", verb, user, channel)
        notice = "You are not a member of that alert's channel, so it cannot be changed here."
    else:
        change, not_shown = await _apply(services, channel, ref, verb, user)
        if change.thread is None:
            notice = alerts.alert_unknown().text
        elif change.refused is not None:
            notice = f"Nothing changed: {change.refused}."
        elif not_shown is not None:
            notice, done = alerts.change_not_shown(not_shown).text, True
    if notice is not None and not done:  # the other notices tell of a refusal
        handled.outcome = Outcome.REFUSED
    # No `hash`: the tab is rebuilt from the store, so the newest publish is always right (a
    # publish that landed meanwhile must not make this one, and its notice, fail).
    await tab.publish(user, notice=notice)
