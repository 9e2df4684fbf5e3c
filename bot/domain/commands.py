"""The grammar of `/algo-errors`: the command text becomes a typed command or a clear error.

The text arrives as Slack sends it with `should_escape: true`: `&`, `<` and `>` as `&amp;`,
`&lt;`, `&gt;`; mentions as `<@U123|name>` and `<!subteam^S123|@name>` (read without the
`|label` too); channels as `<#C123|name>`, links as `<https://…>`, broadcasts as `<!here>`.
Only user and user-group mentions are read (in `subscribe`); every other token in angle
brackets, and a plain `@word` Slack did not turn into a mention, is refused by name.

Pure: no I/O, no clock. README's "Use it in Slack" is the contract.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass

from bot.domain.algorithm_ref import AlgorithmRef, InvalidAlgorithmRef, parse_algorithm_ref
from bot.domain.schedule import Daily, Every, Schedule, duration_seconds, format_duration

COMMAND = "/algo-errors"
API_WINDOW_SECONDS = 7 * 24 * 3600
"""The API returns the errors of the past 7 days (and at most 200 executions)."""
DEFAULT_EVERY_SECONDS = 15 * 60
MIN_EVERY_SECONDS = 60
MAX_TEXT = 2000
"""Characters of command text read at all; longer text is refused, not parsed."""
MAX_OPTION = 200
"""Characters of one option's value (`version:`, `type:`, `tz:` …)."""

_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_QUERY_OPTIONS = ("since", "version", "type")
_SUBSCRIBE_OPTIONS = ("every", "daily", "weekdays", "tz", "min", "notify")
MAX_MENTIONS = 10
MAX_MIN_COUNT = 200
"""The API's window holds at most 200 executions."""
_ANGLED = re.compile(r"<[^<>]*>")
_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9_]{1,20})(?:\|[^<>]*)?>$")
_GROUP_MENTION = re.compile(r"^<!subteam\^(S[A-Z0-9_]{1,20})(?:\|[^<>]*)?>$")
_BROADCASTS = ("channel", "here", "everyone")


class CommandSyntaxError(ValueError):
    """The command text does not parse; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Query:
    target: AlgorithmRef
    since_seconds: int | None = None
    version: str | None = None
    error_type: str | None = None

    @property
    def beyond_window(self) -> bool:
        """`since` reaches further back than the API keeps errors."""
        return self.since_seconds is not None and self.since_seconds > API_WINDOW_SECONDS

    def options_text(self) -> str:
        """The options as the user would type them, e.g. `since:2d type:ValueError`."""
        parts = []
        if self.since_seconds is not None:
            parts.append(f"since:{format_duration(self.since_seconds)}")
        if self.version is not None:
            parts.append(f"version:{self.version}")
        if self.error_type is not None:
            parts.append(f"type:{self.error_type}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Each field None when the command does not name it: a new subscription takes the
    default, subscribing again keeps what it had."""

    target: AlgorithmRef
    schedule: Schedule | None = None
    """None: `every:15m` (`DEFAULT_SCHEDULE`)."""
    timezone: str | None = None
    """None: the subscribing user's Slack time zone, else UTC."""
    min_count: int | None = None
    """`min:N`; None: 1."""
    notify: tuple[str, ...] | None = None
    """The Slack user and user-group ids mentioned; `()` for `notify:none`; None: none."""


DEFAULT_SCHEDULE: Schedule = Every(DEFAULT_EVERY_SECONDS)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    target: AlgorithmRef


@dataclass(frozen=True, slots=True)
class ListSubscriptions:
    pass


Command = Help | Query | Subscribe | Unsubscribe | ListSubscriptions


def parse_duration(text: str, option: str) -> int:
    seconds = duration_seconds(text)
    if seconds is None:
        raise CommandSyntaxError(
            f"`{option}:{text}` is not a duration: write a positive number and a unit,"
            " e.g. `30m`, `6h`, `2d` or `1w`"
        )
    return seconds


def parse_command(text: str) -> Command:
    """Parse what follows `/algo-errors`. Raises `CommandSyntaxError` saying what was wrong."""
    if len(text) > MAX_TEXT:
        raise CommandSyntaxError(
            f"the command is {len(text):,} characters long; at most {MAX_TEXT:,} are read"
        )
    tokens = [token for token in (t.strip("`*") for t in _tokens(text)) if token]
    if not tokens or tokens[0].lower() == "help":
        if len(tokens) > 1:
            raise CommandSyntaxError("`help` takes nothing after it")
        return Help()
    keyword = tokens[0].lower()
    if keyword == "list":
        if len(tokens) > 1:
            raise CommandSyntaxError("`list` takes nothing after it")
        return ListSubscriptions()
    if keyword in ("subscribe", "unsubscribe"):
        if len(tokens) < 2:
            raise CommandSyntaxError(f"`{keyword}` needs an algorithm: `owner/name` or `id:UUID`")
        target = _target(tokens[1])
        if keyword == "unsubscribe":
            if len(tokens) > 2:
                raise CommandSyntaxError("`unsubscribe` takes only the algorithm")
            return Unsubscribe(target)
        mentioned, rest = _mentions(tokens[2:])
        return _subscribe(target, _options(rest, _SUBSCRIBE_OPTIONS), mentioned)
    target = _target(tokens[0])
    angled = [t for t in tokens[1:] if t.startswith(("<", "@"))]
    if angled:  # a mention, channel or link: only `subscribe` takes mentions
        raise CommandSyntaxError(
            f"`{_shown(angled[0])}` is not understood in a lookup; mentions go with `subscribe` "
            "(they are who its alerts notify)"
        )
    options = _options([_unescaped(t) for t in tokens[1:]], _QUERY_OPTIONS)
    since = options.get("since")
    return Query(
        target,
        since_seconds=parse_duration(since, "since") if since is not None else None,
        version=options.get("version"),
        error_type=options.get("type"),
    )


def _tokens(text: str) -> list[str]:
    """The words of the text as Slack sent it; a token in angle brackets (a mention, a link:
    only Slack writes those, since a `<` typed arrives as `&lt;`) is one word even with spaces
    in its label. Escaped `&`, `<`, `>` are read back only once mentions were taken out
    (`_unescaped`), so typed text can never become a mention."""
    tokens: list[str] = []
    position = 0
    for match in _ANGLED.finditer(text):
        tokens += text[position : match.start()].split()
        tokens.append(match.group())
        position = match.end()
    tokens += text[position:].split()
    return tokens


def _unescaped(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _mentions(tokens: list[str]) -> tuple[list[str], list[str]]:
    """The ids of the user and user-group mentions among `tokens` (in order, once each), and
    the other tokens. Broadcasts, channels, links and a plain `@word` are refused by name."""
    mentioned: list[str] = []
    rest: list[str] = []
    refused: list[str] = []
    for token in tokens:
        if token.startswith("<") and token.endswith(">"):
            found = _USER_MENTION.match(token) or _GROUP_MENTION.match(token)
            if found is None:
                refused.append(token)
            elif found.group(1) not in mentioned:
                mentioned.append(found.group(1))
        elif token.startswith("@"):
            refused.append(token)
        else:
            rest.append(_unescaped(token))
    if refused:
        raise CommandSyntaxError(_refusal(refused))
    return mentioned, rest


def _refusal(tokens: list[str]) -> str:
    shown = ", ".join(f"`{_shown(token)}`" for token in tokens[:5])
    more = f" (and {len(tokens) - 5} more)" if len(tokens) > 5 else ""
    broadcasts = [t for t in tokens if _shown(t).lstrip("@!") in _BROADCASTS]
    if broadcasts:
        why = "the bot never notifies a whole channel; mention people or user groups instead"
    elif all(t.startswith("@") for t in tokens):
        why = (
            "Slack did not turn it into a mention: pick the person or user group from Slack's "
            "suggestions as you type"
        )
    else:
        why = "only people (`@name`) and user groups (`@team`) can be notified"
    return f"{shown}{more}: {why}"


def _shown(token: str) -> str:
    """A refused token as the user typed it: `<!here>` → `@here`, `<#C1|ops>` → `#ops`."""
    inner = token[1:-1] if token.startswith("<") and token.endswith(">") else token
    target, _, label = inner.partition("|")
    if target.startswith("!") and target[1:] in _BROADCASTS:
        return "@" + target[1:]
    if target.startswith("#"):
        return "#" + label if label else target
    return _cut_token(target if target.startswith(("http", "mailto")) else label or target)


def _cut_token(text: str) -> str:
    return text if len(text) <= 60 else text[:59] + "…"


def _target(token: str) -> AlgorithmRef:
    if ":" in token and token[:3].lower() != "id:":
        raise CommandSyntaxError(
            f"`{token}` is not an algorithm: write `owner/name` or `id:UUID` first"
        )
    try:
        return parse_algorithm_ref(token)
    except InvalidAlgorithmRef as error:
        raise CommandSyntaxError(str(error)) from None


def _options(tokens: list[str], allowed: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for token in tokens:
        key, colon, value = token.partition(":")
        key = key.lower()
        if not colon:
            raise CommandSyntaxError(
                f"`{token}` is not an option: options look like "
                + ", ".join(f"`{name}:…`" for name in allowed)
            )
        if key not in allowed:
            raise CommandSyntaxError(
                f"`{key}:` is not an option here: use "
                + ", ".join(f"`{name}:…`" for name in allowed)
            )
        if not value:
            raise CommandSyntaxError(f"`{key}:` needs a value")
        if key in options:
            raise CommandSyntaxError(f"`{key}:` is given twice")
        if len(value) > MAX_OPTION:
            raise CommandSyntaxError(f"`{key}:` takes at most {MAX_OPTION} characters")
        options[key] = value
    return options


def _subscribe(target: AlgorithmRef, options: dict[str, str], mentioned: list[str]) -> Subscribe:
    schedules = [key for key in ("every", "daily", "weekdays") if key in options]
    if len(schedules) > 1:
        raise CommandSyntaxError("give one schedule: `every:`, `daily:` or `weekdays:`")
    schedule: Schedule | None = None
    if "every" in options:
        seconds = parse_duration(options["every"], "every")
        if seconds < MIN_EVERY_SECONDS:
            raise CommandSyntaxError("`every:` is at least `1m`")
        if seconds > API_WINDOW_SECONDS:
            raise CommandSyntaxError(
                "`every:` is at most `7d`: the API keeps only the last 7 days of errors, so a"
                " longer interval would miss some"
            )
        schedule = Every(seconds)
    for key in ("daily", "weekdays"):
        if key in options:
            clock = _CLOCK.fullmatch(options[key])
            if clock is None:
                raise CommandSyntaxError(
                    f"`{key}:{options[key]}` is not a time of day: write `HH:MM`, e.g. `09:00`"
                )
            schedule = Daily(int(clock.group(1)), int(clock.group(2)), key == "weekdays")
    timezone = options.get("tz")
    if timezone is not None:
        timezone = _timezone(timezone)
    return Subscribe(
        target, schedule, timezone, _min_count(options.get("min")), _notify(options, mentioned)
    )


def _min_count(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_MIN_COUNT:
        raise CommandSyntaxError(
            f"`min:{text}` is not a threshold: write a whole number from 1 to {MAX_MIN_COUNT} "
            "(the API keeps at most 200 executions)"
        )
    return int(text)


def _notify(options: dict[str, str], mentioned: list[str]) -> tuple[str, ...] | None:
    value = options.get("notify")
    if value is not None and value.lower() != "none":
        raise CommandSyntaxError(
            f"`notify:{value}` is not known: write `notify:none` to notify nobody, or mention "
            "people and user groups"
        )
    if value is not None and mentioned:
        raise CommandSyntaxError("`notify:none` and mentions contradict each other: give one")
    if len(mentioned) > MAX_MENTIONS:
        raise CommandSyntaxError(
            f"{len(mentioned)} people and groups are mentioned; at most {MAX_MENTIONS} can be "
            "notified (a user group counts as one)"
        )
    if value is not None:
        return ()
    return tuple(mentioned) if mentioned else None


def _timezone(name: str) -> str:
    """A name of the time-zone database (`Europe/Berlin`), never a path or a file of it."""
    if name.upper() == "UTC":
        return "UTC"
    if name not in _zone_names():
        raise CommandSyntaxError(
            f"`tz:{name}` is not a time zone: write `Area/City`, e.g. `tz:Europe/Berlin`"
        )
    return name


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
