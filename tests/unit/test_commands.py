"""The slash-command grammar (README: "Use it in Slack")."""

from __future__ import annotations

import re

import pytest

from bot.domain.algorithm_ref import AlgorithmId, OwnerName
from bot.domain.commands import (
    CommandSyntaxError,
    Help,
    ListSubscriptions,
    Query,
    Subscribe,
    Unsubscribe,
    parse_command,
)
from bot.domain.schedule import Daily, Every

UUID = "3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", Help()),
        ("  help ", Help()),
        ("acme/image_tagger", Query(OwnerName("acme", "image_tagger"))),
        (f"id:{UUID}", Query(AlgorithmId(UUID))),
        (f"ID:{UUID}", Query(AlgorithmId(UUID))),
        ("`acme/image_tagger`", Query(OwnerName("acme", "image_tagger"))),
        (
            "acme/x since:6h version:1.2.3 type:ValueError",
            Query(OwnerName("acme", "x"), 6 * 3600, "1.2.3", "ValueError"),
        ),
        ("acme/x SINCE:1w", Query(OwnerName("acme", "x"), 7 * 86400)),
        ("subscribe acme/x", Subscribe(OwnerName("acme", "x"))),  # defaults, or kept
        ("subscribe acme/x every:1m", Subscribe(OwnerName("acme", "x"), Every(60))),
        ("subscribe acme/x every:1w", Subscribe(OwnerName("acme", "x"), Every(7 * 24 * 3600))),
        (
            "subscribe acme/x daily:09:00 tz:Europe/Berlin",
            Subscribe(OwnerName("acme", "x"), Daily(9, 0), "Europe/Berlin"),
        ),
        ("subscribe acme/x weekdays:7:30", Subscribe(OwnerName("acme", "x"), Daily(7, 30, True))),
        ("unsubscribe acme/x", Unsubscribe(OwnerName("acme", "x"))),
        ("list", ListSubscriptions()),
    ],
)
def test_valid_commands(text: str, command: object) -> None:
    assert parse_command(text) == command


X = OwnerName("acme", "x")


@pytest.mark.parametrize(
    ("text", "notify"),
    [
        ("<@U0G9QF9C6|alice>", ("U0G9QF9C6",)),  # as Slack sends it with should_escape
        ("<@U0G9QF9C6>", ("U0G9QF9C6",)),  # without the label
        ("<@W0G9QF9C6|enterprise.user>", ("W0G9QF9C6",)),
        ("<!subteam^S0614TZR7|@oncall-ml>", ("S0614TZR7",)),
        ("<!subteam^S0614TZR7>", ("S0614TZR7",)),
        ("<@U1|a b c> <!subteam^S2|@team>", ("U1", "S2")),  # a label with spaces is one token
        ("<@U1|a> <@U1>", ("U1",)),  # once each
        ("notify:none", ()),
        ("NOTIFY:None", ()),
        ("", None),  # not named: a new subscription notifies nobody, an old one keeps its list
    ],
)
def test_mentions_become_the_notify_list(text: str, notify: tuple[str, ...] | None) -> None:
    command = parse_command(f"subscribe acme/x every:1h {text} tz:UTC")
    assert command == Subscribe(X, Every(3600), "UTC", None, notify)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("subscribe acme/x min:1", Subscribe(X, min_count=1)),
        ("subscribe acme/x min:200", Subscribe(X, min_count=200)),
        ("subscribe acme/x min:5 <@U1>", Subscribe(X, min_count=5, notify=("U1",))),
        # Escaped text as Slack sends it: &amp; &lt; &gt; are read back in options.
        ("acme/x type:A&amp;B version:&lt;1&gt;", Query(X, None, "<1>", "A&B")),
    ],
)
def test_thresholds_and_escaped_text(text: str, command: object) -> None:
    assert parse_command(text) == command


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("subscribe acme/x <!here>", "`@here`: the bot never notifies a whole channel"),
        ("subscribe acme/x <!channel>", "`@channel`: the bot never notifies a whole channel"),
        ("subscribe acme/x <!everyone>", "`@everyone`: the bot never notifies a whole channel"),
        ("subscribe acme/x @here", "`@here`: the bot never notifies a whole channel"),
        ("subscribe acme/x @bob", "`@bob`: Slack did not turn it into a mention"),
        ("subscribe acme/x <@U1> @bob @carol", "`@bob`, `@carol`: Slack did not turn it"),
        ("subscribe acme/x <#C0123|ops>", "`#ops`: only people (`@name`) and user groups"),
        ("subscribe acme/x <https://evil.example|click>", "`https://evil.example`: only people"),
        ("subscribe acme/x <@bad id>", "only people"),
        ("subscribe acme/x notify:none <@U1>", "contradict each other"),
        ("subscribe acme/x notify:all", "`notify:all` is not known"),
        ("subscribe acme/x " + " ".join(f"<@U{n}>" for n in range(11)), "at most 10"),
        ("subscribe acme/x min:0", "`min:0` is not a threshold"),
        ("subscribe acme/x min:201", "from 1 to 200"),
        ("subscribe acme/x min:-3", "is not a threshold"),
        ("subscribe acme/x min:2.5", "is not a threshold"),
        ("subscribe acme/x min:²", "is not a threshold"),
        ("subscribe acme/x min:٣", "is not a threshold"),
        # Typed text that looks like a mention arrives escaped: never a mention.
        ("subscribe acme/x &lt;@U999&gt;", "`<@U999>` is not an option"),
        ("subscribe acme/x &lt;!subteam^S1&gt;", "is not an option"),
        ("acme/x &lt;@U999&gt;", "`<@U999>` is not an option"),
        ("acme/x <@U1>", "`@U1` is not understood in a lookup; mentions go with `subscribe`"),
        ("acme/x <https://x.example/a>", "`https://x.example/a` is not understood in a lookup"),
        ("acme/x <#C1|ops>", "`#ops` is not understood in a lookup"),
        ("acme/x @bob", "`@bob` is not understood in a lookup"),
    ],
)
def test_mentions_and_thresholds_refused(text: str, problem: str) -> None:
    with pytest.raises(CommandSyntaxError, match=re.escape(problem)):
        parse_command(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("acme", "is not an algorithm"),
        ("acme/x/y", "is not an algorithm name"),
        ("1acme/x", "is not an owner"),
        (f"{'a' * 31}/x", "at most 30"),
        ("id:1234", "is not an algorithm id"),
        ("acme/x since:5", "is not a duration"),
        ("acme/x since:0h", "is not a duration"),
        ("acme/x since:2y", "is not a duration"),
        ("acme/x color:red", "`color:` is not an option"),
        ("acme/x since:1h since:2h", "given twice"),
        ("acme/x version:", "needs a value"),
        ("acme/x extra", "is not an option"),
        ("since:1h acme/x", "write `owner/name` or `id:UUID` first"),
        ("subscribe", "needs an algorithm"),
        ("subscribe acme/x every:30s", "is not a duration"),
        ("subscribe acme/x every:8d", "is at most `7d`: the API keeps only the last 7 days"),
        ("subscribe acme/x every:999999w", "is at most `7d`"),  # past what a date holds
        ("subscribe acme/x daily:25:00", "is not a time of day"),
        ("subscribe acme/x every:1h daily:09:00", "one schedule"),
        ("subscribe acme/x tz:Mars/Olympus", "is not a time zone"),
        ("subscribe acme/x tz:" + "Europe/" * 40, "`tz:` takes at most 200 characters"),
        ("subscribe acme/x tz:Europe", "is not a time zone"),
        ("subscribe acme/x tz:../../etc/localtime", "is not a time zone"),
        ("acme/x version:" + "9" * 201, "`version:` takes at most 200 characters"),
        ("acme/x " + "x" * 2000, "at most 2,000 are read"),
        ("subscribe acme/x since:1h", "`since:` is not an option here"),
        ("list all", "takes nothing"),
        ("help me", "takes nothing"),
    ],
)
def test_invalid_commands_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(CommandSyntaxError, match=problem.replace("(", r"\(")):
        parse_command(text)


def test_since_beyond_the_window_is_accepted_and_flagged() -> None:
    query = parse_command("acme/x since:2w")
    assert isinstance(query, Query)
    assert query.beyond_window
    assert query.options_text() == "since:2w"
    assert not parse_command("acme/x since:7d").beyond_window  # type: ignore[union-attr]
