"""Which algorithm version is newer, for "resolved in the next version".

Versions compare as semantic versions (semver.org §11: `1.10.0` > `1.9.3`, a pre-release is
older than its release, pre-release identifiers compare numerically or by ASCII, build metadata
is ignored; a leading `v` and a missing patch number, `1.2` = `1.2.0`, are read too). A
version that is not a semantic version (a development build's git hash) counts as newer than V
unless it equals V; a record without a version is never newer.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import total_ordering

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


@total_ordering
class SemVer:
    """A parsed semantic version, ordered by precedence."""

    __slots__ = ("core", "pre")

    def __init__(self, core: tuple[int, int, int], pre: tuple[int | str, ...]) -> None:
        self.core = core
        self.pre = pre

    @classmethod
    def parse(cls, text: str) -> SemVer | None:
        match = _SEMVER.match(text.strip())
        if match is None:
            return None
        major, minor, patch, pre = match.groups()
        identifiers = tuple(int(p) if p.isdecimal() else p for p in pre.split(".")) if pre else ()
        return cls((int(major), int(minor), int(patch or 0)), identifiers)

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]:
        # A release (no pre-release) ranks above its pre-releases; numeric identifiers rank
        # below alphanumeric ones; a longer list of equal prefix ranks higher.
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.pre)
        return (self.core, 0 if self.pre else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def resolved_through(versions: Iterable[str], latest: str | None) -> str | None:
    """V of "resolved in the next version": the highest semantic version among `versions`,
    else `latest` (the latest version string seen); None when no version was ever seen."""
    parsed = [(v, s) for v in versions if (s := SemVer.parse(v)) is not None]
    if parsed:
        return max(parsed, key=lambda pair: pair[1])[0]
    return latest


def is_newer(version: str | None, than: str) -> bool:
    """Whether an occurrence in `version` comes from a version newer than `than` (V)."""
    if version is None or not version.strip():
        return False
    if version == than:
        return False
    mine, theirs = SemVer.parse(version), SemVer.parse(than)
    if mine is None or theirs is None:
        return True  # not comparable as semantic versions: a build other than V
    return mine > theirs
