"""Version order for "resolved in the next version"."""

from __future__ import annotations

import pytest

from bot.domain.versions import SemVer, is_newer, resolved_through

ASCENDING = [
    "0.9.9",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.2",  # = 1.2.0
    "1.9.3",
    "v1.10.0",
    "2.0.0",
]
"""semver.org §11's own example, and the forms algorithm versions take."""


@pytest.mark.parametrize("index", range(len(ASCENDING) - 1))
def test_semantic_versions_are_ordered_by_precedence(index: int) -> None:
    older, newer = ASCENDING[index], ASCENDING[index + 1]
    assert is_newer(newer, older)
    assert not is_newer(older, newer)


@pytest.mark.parametrize(
    ("version", "v", "newer"),
    [
        ("1.0.0+build.7", "1.0.0", False),  # build metadata is not a version
        ("1.0.0", "1.0.0", False),
        ("3f2a9c1", "1.0.0", True),  # a development build is newer unless it is V
        ("3f2a9c1", "3f2a9c1", False),
        ("e4f5a6b", "3f2a9c1", True),
        ("1.0.1", "3f2a9c1", True),  # V was not a semantic version: any other is newer
        (None, "1.0.0", False),  # no version: never newer
        ("", "1.0.0", False),
        ("  ", "3f2a9c1", False),
    ],
)
def test_what_is_not_a_semantic_version_is_newer_unless_it_is_v(
    version: str | None, v: str, newer: bool
) -> None:
    assert is_newer(version, v) is newer


@pytest.mark.parametrize(
    ("versions", "latest", "v"),
    [
        (("1.9.3", "1.10.0", "1.2.0"), "1.2.0", "1.10.0"),  # the highest, not the latest
        (("1.0.0", "3f2a9c1"), "3f2a9c1", "1.0.0"),
        (("3f2a9c1", "e4f5a6b"), "e4f5a6b", "e4f5a6b"),  # no semantic version: the latest
        ((), None, None),
    ],
)
def test_v_is_the_highest_semantic_version_else_the_latest_seen(
    versions: tuple[str, ...], latest: str | None, v: str | None
) -> None:
    assert resolved_through(versions, latest) == v


@pytest.mark.parametrize("text", ["1", "1234567", "1.0.0.0", "01.2.3", "1.2.3-", "latest", ""])
def test_what_does_not_parse(text: str) -> None:
    assert SemVer.parse(text) is None
