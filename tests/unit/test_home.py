"""The Home tab: its view within Slack's limits, and memberships read at most once a minute;
the subscription messages with a notify list and a threshold."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from syrupy.assertion import SnapshotAssertion

from bot.domain.alerts import AlertState, AlertThread, Subscription
from bot.slack.blocks import subscriptions
from bot.slack.blocks.home import home_value, home_view, parse_home_value
from bot.slack.listeners.home import HomeTab
from bot.usecases.home import HOME_LIMIT, HomeAlerts

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
THREAD = AlertThread(
    channel_id="C1", algorithm="acme/image_tagger", fingerprint="2:abc", parent_ts="1.000100",
    state=AlertState.OPEN, muted_until=None, state_changed_by=None, state_changed_at=None,
    count=3, versions=("1.0.0",), first_seen_ms=1_764_000_000_000,
    last_seen_ms=1_764_000_600_000, error_type="AlgorithmError",
    headline="ValueError: <!here> image is empty",
)  # fmt: skip
WEB = "https://algorithmia.example.com"


def test_a_home_tab_with_the_most_alerts_stays_within_100_blocks() -> None:
    owned = [replace(THREAD, fingerprint=f"2:o{n}", owner="U1") for n in range(20)]
    others = [replace(THREAD, fingerprint=f"2:x{n}") for n in range(HOME_LIMIT - 20)]
    view = home_view(HomeAlerts(owned, others, more=17), {}, notice="n" * 500, web_url=WEB)
    blocks = view["blocks"]
    assert len(blocks) <= 100
    assert "… and 17 more alerts" in str(blocks[-1])
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)) == HOME_LIMIT


def test_home_values_name_the_channel_and_the_alert_and_nothing_else_parses() -> None:
    parsed = parse_home_value(home_value(THREAD))
    assert parsed is not None
    assert parsed[0] == "C1"
    assert parsed[1].matches(THREAD)
    for forged in ("", "C1:2:abc", "home:", "home:C1", "home::2:abc@0123456789", "home:C1:x"):
        assert parse_home_value(forged) is None


def test_the_home_view_snapshot(snapshot: SnapshotAssertion) -> None:
    mine = replace(THREAD, owner="U1", owner_since=NOW, state=AlertState.REGRESSED)
    other = replace(THREAD, fingerprint="2:def", channel_id="G2", parent_ts="2.0")
    links = {("C1", "1.000100"): "https://t.slack.com/archives/C1/p1000100"}
    view = home_view(HomeAlerts([mine], [other], more=0), links, web_url=WEB)
    assert view == snapshot
    assert home_view(HomeAlerts([], [], 0), {}) == snapshot  # how to subscribe
    for block in view["blocks"]:
        text = block.get("text", {}).get("text", "") if block["type"] == "section" else ""
        assert "<!here>" not in text  # the headline is escaped


class _Sender:
    def __init__(self) -> None:
        self.membership_reads = 0
        self.published: list[dict[str, Any]] = []

    async def user_channels(self, user: str) -> set[str]:
        self.membership_reads += 1
        return {"C1"}

    async def permalink(self, channel: str, ts: str) -> str | None:
        return f"https://t.slack.com/archives/{channel}/p{ts.replace('.', '')}"

    async def publish_home(self, user: str, view: dict[str, Any], view_hash: str | None) -> bool:
        self.published.append(view)
        return True


class _Store:
    async def home_alerts(
        self, user: str, channels: object, limit: int
    ) -> tuple[list[AlertThread], int]:
        return [THREAD], 1


class _Services:
    def __init__(self) -> None:
        self.sender = _Sender()
        self.store = _Store()
        self.web_url = WEB


async def test_memberships_are_read_at_most_once_a_minute_per_user() -> None:
    clock = [0.0]
    services = _Services()
    tab = HomeTab(services, clock=lambda: clock[0])  # type: ignore[arg-type]
    for _ in range(5):
        await tab.publish("U1")
    assert services.sender.membership_reads == 1
    await tab.publish("U2")
    assert services.sender.membership_reads == 2
    clock[0] += 61
    await tab.publish("U1")
    assert services.sender.membership_reads == 3
    assert len(services.sender.published) == 7


def test_subscription_messages_snapshot(snapshot: SnapshotAssertion) -> None:
    subscription = Subscription(
        id=1, channel_id="C1", algorithm="acme/image_tagger", schedule="every:15m",
        timezone="Europe/Berlin", created_by="U1", created_at=NOW, next_run_at=NOW,
        paused_reason=None, consecutive_failures=0, outage_notified=False,
        notify=("U2", "S3"), min_count=3,
    )  # fmt: skip
    confirmation = subscriptions.subscribed(subscription, again=False, seen=4, by="U1")
    assert confirmation == snapshot
    assert "<@U2>" not in str(confirmation.blocks)  # counted in the channel, not pinged
    listed = subscriptions.subscription_list([subscription])
    assert listed == snapshot
    assert "notifies <@U2> <!subteam^S3>" in str(listed.blocks)
    # Subscribing again, whatever it changed: what the subscription now is, all of it.
    again = subscriptions.subscribed(subscription, again=True, seen=0, by="U1")
    assert again.text == (
        ":pushpin: <@U1> updated this channel's subscription to *acme/image_tagger*: digests"
        " `every:15m` (Europe/Berlin)."
    )
    assert "notifies 2 people and groups · `min:3`" in str(again.blocks)


def test_a_list_of_500_subscriptions_stays_within_slack_s_limits() -> None:
    """Each in full while the message has room, the rest by name, then a count: one message
    of at most 50 blocks, 3,000 characters per section, 12,000 in all."""
    people = tuple(f"U{n:08d}" for n in range(10))  # the most a subscription notifies

    def subscription(n: int) -> Subscription:
        gone = "channel_not_found: the channel was archived" if n % 7 == 0 else None
        return Subscription(
            id=n, channel_id="C1", algorithm=f"acme-team/algorithm_number_{n:03d}",
            schedule="weekdays:09:00", timezone="America/Argentina/Buenos_Aires",
            created_by="U1", created_at=NOW, next_run_at=NOW, paused_reason=gone,
            consecutive_failures=0, outage_notified=False, notify=people, min_count=5,
        )  # fmt: skip

    many = [subscription(n) for n in range(500)]
    listed = subscriptions.subscription_list(many)
    texts = [block["text"]["text"] for block in listed.blocks]
    assert len(listed.blocks) <= 50
    assert all(len(text) <= 3000 for text in texts)
    assert sum(map(len, texts)) <= 12_000
    assert texts[0] == "This channel's subscriptions (500):"
    shown = [t for t in texts[1:] if t.startswith("• ")]
    in_full = sum(text.count("\n") + 1 for text in shown)
    assert in_full >= 10
    assert all(line.endswith("unreported occurrences") for t in shown for line in t.split("\n"))
    rest = texts[-1]
    assert rest.startswith(f"… and {500 - in_full} more: *acme-team/algorithm_number_")
    by_name = rest.count("*acme-team/")
    others = int(rest.rsplit(", and ", 1)[1].removesuffix(" others"))
    assert in_full + by_name + others == 500
    assert "(paused)" in rest
