"""The slash-command grammar of INTERFACE §3."""

from __future__ import annotations

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
        ("subscribe acme/x", Subscribe(OwnerName("acme", "x"), Every(900))),
        ("subscribe acme/x every:1m", Subscribe(OwnerName("acme", "x"), Every(60))),
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
