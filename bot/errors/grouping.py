"""Fingerprinting and grouping: one bug is one group.

With a stack trace the exception types of the whole chain, the algorithm's own code locations
(file and function, not line) and the place each exception was raised decide; when no frame is
the algorithm's own, the innermost library frames do. Without a trace the message decides after
numbers, hex ids and UUIDs are masked.

Fingerprints are versioned (`FINGERPRINT_VERSION`): stored alert threads are keyed by them, so
an older strategy is kept (`legacy_fingerprint`) for as long as stored keys may carry it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.errors import traces
from bot.errors.records import ErrorRecord
from bot.errors.traces import Frame, Origin, ParsedError, RaisedException, Runtime, parse_error

_LIBRARY_FRAMES_DECIDING = 5
_MEMO_MAX_CHARS = 64_000
"""Longer error strings are parsed each time rather than kept in the memo."""
_MAX_CYCLE = 4
_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})
"""Python 3.12 inlines comprehensions, so their frames come and go between versions."""
_EXHAUSTION_TYPES = frozenset(
    {"RecursionError", "MemoryError", "StackOverflowError", "OutOfMemoryError",
     "SystemStackError", "NoMemoryError"}
)  # fmt: skip
"""Short names of the exceptions of an exhausted stack or heap (Python, Java, torch, Ruby)."""
_NODE_STACK_OVERFLOW = "Maximum call stack size exceeded"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{8}")
"""What a UUID and a long hex id both contain; led by a character set, which the engine scans
for faster than the patterns above, so most messages are spared them."""
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DIGITS = re.compile(r"\d+")
_QUALIFIER = re.compile(r"\.|::")
_VERSION_PARTS = re.compile(r"[.\-+]")


def mask_variable_parts(message: str) -> str:
    """Replace UUIDs, hex ids and numbers so that one message shape is one key."""
    masked = message
    if _HEX_RUN.search(masked) is not None:
        masked = _UUID.sub("<uuid>", masked)
        masked = _HEX.sub("<hex>", masked)
    elif "0x" in masked:  # without 8 hex digits in a row, only a `0x` id can be masked as hex
        masked = _HEX.sub("<hex>", masked)
    return _NUMBER.sub("<n>", masked).strip()


FINGERPRINT_VERSION = 2
"""The strategy `fingerprint` implements. Version 1 (`legacy_fingerprint`) had no raise sites.

Raise it with any change that moves records between groups, and keep the previous strategy as
the legacy one: alert threads stored under an old fingerprint are adopted through it."""


def fingerprint(parsed: ParsedError, error_type: str) -> str:
    """A short stable id of the bug behind one error: `FINGERPRINT_VERSION`, a colon and 12 hex
    digits (`2:…`).

    Version 2 adds to version 1 where each exception of the chain was raised
    (`_raise_sites`): the same own frames reaching two different checks inside a library are
    two bugs. Library frames are also read alike across runtime versions (`_frame_location`)."""
    return f"{FINGERPRINT_VERSION}:{_digest(_key(parsed, error_type, legacy=False))}"


def legacy_fingerprint(parsed: ParsedError, error_type: str) -> str:
    """Version 1: 12 bare hex digits, without raise sites. Frozen bit for bit: databases keep
    these as alert-thread keys, which groups adopt through `ErrorGroup.legacy_fingerprints`."""
    return _digest(_key(parsed, error_type, legacy=True))


def _key(parsed: ParsedError, error_type: str, *, legacy: bool) -> list[str]:
    """What a fingerprint hashes; `legacy`: version 1's (no raise sites, its library frames)."""
    chain = parsed.chain
    own = _own_locations(chain)
    if own:
        key = ["own", *_types(chain), "|", *own]
        return key if legacy else [*key, "@", *_raise_sites(parsed)]
    if any(exc.frames for exc in chain):
        # Raised inside libraries only: the same frames may serve different causes (two
        # missing modules), so the message's shape also counts.
        library = _legacy_library_locations(parsed) if legacy else _library_locations(parsed)
        return ["lib", *_types(chain), "|", *library, "|", mask_variable_parts(chain[-1].message)]
    return ["msg", error_type, parsed.stage or "", mask_variable_parts(parsed.message)]


def _digest(key: list[str]) -> str:
    return hashlib.sha1("\x1f".join(key).encode()).hexdigest()[:12]


def clear_caches() -> None:
    """Forget parsed errors, frames and locations (benchmarks measure a cold response)."""
    traces.clear_caches()
    _location.cache_clear()
    _frame_location.cache_clear()
    _is_exhaustion_type.cache_clear()
    _version_key.cache_clear()
    read_error.cache_clear()


def _types(chain: tuple[RaisedException, ...]) -> list[str]:
    """The chain's exception types, without the platform's wrappers."""
    return [exc.type for exc in chain if exc.type and not exc.type.startswith("com.algorithmia.")]


def _own_locations(chain: tuple[RaisedException, ...]) -> list[str]:
    """The algorithm's own frames of the whole chain as `_location`s, recursion folded; [] when
    none is its own (or no frame decides)."""
    own = Origin.OWN
    return _code_locations([f for exc in chain for f in exc.frames if f.origin is own])


def _code_locations(frames: Iterable[Frame]) -> list[str]:
    locations = [_location(frame.file, frame.function) for frame in frames]
    return _collapse_recursion([location for location in locations if location])


@functools.lru_cache(maxsize=8192)
def _location(file: str, function: str) -> str:
    """`file:function` without directories, line or digits; "" for frames that never decide."""
    if function in _COMPREHENSIONS:
        return ""
    if "." in function and not function.startswith("<") and not file.endswith(".java"):
        # Python and Node print `Class.method` or `Object.method` depending on the version and
        # the receiver; Java keeps the class in the function name, which is the point.
        function = function.rsplit(".", 1)[-1]
    return f"{file.rsplit('/', 1)[-1]}:{_DIGITS.sub('#', function)}"


def _legacy_library_locations(parsed: ParsedError) -> list[str]:
    """Version 1's innermost library frames of each exception, outside Node's own internals."""
    locations: list[str] = []
    for exc in parsed.chain:
        library = [f for f in exc.frames if f.origin is Origin.LIBRARY]
        outside_core = [f for f in library if not f.file.startswith(("node:", "internal/"))]
        locations.extend(_code_locations((outside_core or library)[:_LIBRARY_FRAMES_DECIDING]))
    return locations


def _library_locations(parsed: ParsedError) -> list[str]:
    """The innermost library frames of each exception, outside the language's own internals."""
    runtime = parsed.runtime
    locations: list[str] = []
    for exc in parsed.chain:
        library = [f for f in exc.frames if f.origin is Origin.LIBRARY]
        outside_core = [f for f in library if not _is_core(f.file, runtime)]
        picked = (outside_core or library)[:_LIBRARY_FRAMES_DECIDING]
        found = [_frame_location(f.file, f.function, runtime) for f in picked]
        locations.extend(_collapse_recursion([location for location in found if location]))
    return locations


def _raise_sites(parsed: ParsedError) -> list[str]:
    """Where each exception of the chain was raised: its innermost frame's location.

    Every exception counts, not only the last: a wrapper the algorithm raises (Python's
    `raise StageError(...) from exc`, Java's `Caused by:`) sits in its own code, already in the
    key, while the cause names the check that failed inside the library. Left out: the
    platform's frames and wrappers (they never decide), the language's internals (which of
    them a trace shows changes between versions), and exhausted stacks and heaps, where depth
    or memory at that moment decides where the limit strikes."""
    runtime = parsed.runtime
    has_core = runtime is Runtime.NODE or runtime is Runtime.RUBY  # else `_is_core` is False
    platform = Origin.PLATFORM
    sites: list[str] = []
    for exc in parsed.chain:
        if exc.type.startswith("com.algorithmia.") or _is_exhaustion(exc.type, exc.message):
            continue
        for frame in exc.frames:
            if frame.origin is platform or (has_core and _is_core(frame.file, runtime)):
                continue
            site = _frame_location(frame.file, frame.function, runtime)
            if site:  # "" for comprehension frames, which Python 3.12 inlines
                sites.append(site)
                break
    return sites


def _is_exhaustion(exc_type: str, message: str) -> bool:
    if _is_exhaustion_type(exc_type):
        return True
    # Node's stack overflow is a plain RangeError, known by its message only.
    return exc_type == "RangeError" and message.startswith(_NODE_STACK_OVERFLOW)


@functools.lru_cache(maxsize=1024)
def _is_exhaustion_type(exc_type: str) -> bool:
    """Whether the type is one of `_EXHAUSTION_TYPES`, qualified or not (a response repeats
    few types, so each is split once)."""
    return _QUALIFIER.split(exc_type)[-1] in _EXHAUSTION_TYPES


def _is_core(file: str, runtime: Runtime) -> bool:
    """Frames of the runtime itself, whose presence and names vary between its versions."""
    if runtime is Runtime.NODE:
        # `node:fs` and `node:internal/…` since Node 16, `fs.js` and `internal/….js` before;
        # V8 builtins print `<anonymous>`.
        return file.startswith(("node:", "internal/")) or "/" not in file
    if runtime is Runtime.RUBY:
        return file.startswith("<internal:")  # Ruby 3 moved some core methods into Ruby
    return False


@functools.lru_cache(maxsize=8192)
def _frame_location(file: str, function: str, runtime: Runtime) -> str:
    """`_location`, with each runtime's file names made the same across its versions."""
    if runtime is Runtime.JAVA:
        # The class in the function already names the file, which some frames print as
        # `Native Method` or `Unknown Source` instead.
        return _DIGITS.sub("#", function)
    if runtime is Runtime.NODE and _is_core(file, runtime):
        file = file.removeprefix("node:").removesuffix(".js")
    elif runtime is Runtime.PYTHON and file.startswith("<frozen ") and file.endswith(">"):
        # Python 3.11 froze `os`, `codecs` and others: `<frozen codecs>` was `…/codecs.py`.
        file = file[len("<frozen ") : -1].rsplit(".", 1)[-1] + ".py"
    return _location(file, function)


def _collapse_recursion(locations: list[str]) -> list[str]:
    """Fold a repeated run of one to four locations into one copy: depth is not a new bug."""
    if len(set(locations)) == len(locations):
        return locations
    collapsed: list[str] = []
    for location in locations:
        collapsed.append(location)
        for size in range(1, _MAX_CYCLE + 1):
            if len(collapsed) >= 2 * size and collapsed[-size:] == collapsed[-2 * size : -size]:
                del collapsed[-size:]
                break
    return collapsed


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One record with its parsed error string."""

    record: ErrorRecord
    parsed: ParsedError
    fingerprint: str

    @property
    def legacy_fingerprint(self) -> str:
        """Version 1 of the fingerprint, under which older alert threads may be stored.
        Computed when asked: digests ask (to find such threads), queries never do."""
        return legacy_fingerprint(self.parsed, self.record.error_type)


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """All occurrences of one bug in a response, newest first."""

    fingerprint: str
    occurrences: tuple[Occurrence, ...]

    @property
    def latest(self) -> Occurrence:
        return self.occurrences[0]

    @property
    def count(self) -> int:
        return len(self.occurrences)

    @property
    def error_type(self) -> str:
        return self.latest.record.error_type

    @property
    def headline(self) -> str:
        return self.latest.parsed.headline

    @property
    def first_seen(self) -> int:
        return self.occurrences[-1].record.created_at

    @property
    def last_seen(self) -> int:
        return self.latest.record.created_at

    @property
    def request_ids(self) -> tuple[str, ...]:
        return tuple(o.record.request_id for o in self.occurrences)

    @property
    def versions(self) -> tuple[str, ...]:
        found = {version for o in self.occurrences if (version := o.record.algoversion)}
        return tuple(sorted(found, key=_version_key))

    @property
    def legacy_fingerprints(self) -> tuple[str, ...]:
        """The distinct version-1 fingerprints of the occurrences, most frequent first (ties:
        the most recently seen first). Several when version 1 had merged bugs of this group
        with others' or split it by accident; an alert thread keyed by one is this group's."""
        counts = Counter(o.legacy_fingerprint for o in self.occurrences)
        return tuple(sorted(counts, key=lambda fp: -counts[fp]))


@functools.lru_cache(maxsize=1024)
def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Numeric parts by number (`1.10` after `1.9`); an algorithm's records carry few versions,
    so each is split once."""
    parts = _VERSION_PARTS.split(version)
    return tuple((int(p), "") if p.isdecimal() else (-1, p) for p in parts)


def read_occurrences(records: Iterable[ErrorRecord]) -> list[Occurrence]:
    """Parse and fingerprint records, dropping repeated request ids."""
    seen_ids: set[str] = set()
    occurrences = []
    for record in records:
        if record.request_id in seen_ids:
            continue
        seen_ids.add(record.request_id)
        if len(record.error) <= _MEMO_MAX_CHARS:
            parsed, fp = read_error(record.error, record.error_type)
        else:
            parsed, fp = read_error.__wrapped__(record.error, record.error_type)
        occurrences.append(Occurrence(record, parsed, fp))
    return occurrences


@functools.lru_cache(maxsize=2048)
def read_error(error: str, error_type: str) -> tuple[ParsedError, str]:
    """Parse and fingerprint one error string. Memoized: the API returns the same records to
    every query and digest of the 7-day window, and one bug often repeats its exact text."""
    parsed = parse_error(error, error_type)
    return parsed, fingerprint(parsed, error_type)


def group_occurrences(occurrences: Sequence[Occurrence]) -> list[ErrorGroup]:
    """Group by fingerprint; groups ordered by last seen, newest first (ties: bigger first)."""
    by_fingerprint: dict[str, list[Occurrence]] = {}
    for occurrence in occurrences:
        by_fingerprint.setdefault(occurrence.fingerprint, []).append(occurrence)
    groups = [
        ErrorGroup(fp, tuple(sorted(items, key=lambda o: o.record.created_at, reverse=True)))
        for fp, items in by_fingerprint.items()
    ]
    groups.sort(key=lambda g: (g.last_seen, g.count), reverse=True)
    return groups


def group_records(records: Iterable[ErrorRecord]) -> list[ErrorGroup]:
    return group_occurrences(read_occurrences(records))


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """The query options of a command: every count covers only the matching records."""

    since_ms: int | None = None
    """Keep records created at or after this epoch-ms instant."""
    version: str | None = None
    error_type: str | None = None

    def matches(self, occurrence: Occurrence) -> bool:
        record = occurrence.record
        if self.since_ms is not None and record.created_at < self.since_ms:
            return False
        if self.version is not None and record.algoversion != self.version:
            return False
        if self.error_type is not None:
            wanted = self.error_type.lower()
            names = {record.error_type.lower()}
            for exc_type in occurrence.parsed.exception_types:
                names.add(exc_type.lower())
                names.add(_QUALIFIER.split(exc_type)[-1].lower())
            if wanted not in names:
                return False
        return True
