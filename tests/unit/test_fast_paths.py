"""Shortcuts taken for speed give what the plain way gives: the line-start patterns of the trace
reader, led by a literal newline, find what the same patterns anchored with `^` (multiline)
find; masking a message skips patterns only where they could not match."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.errors import grouping, traces

_ANCHORED = {
    "java": re.compile(r"^(?:\t| {1,4})at ([^\s(]+)\(([^)\n]*)\)[ \t]*$", re.M),
    "node": re.compile(r"^[ \t]+at \S", re.M),
    "ruby": re.compile(r"^[ \t]*([^\s:][^:\n]*):(\d+):in [`']([^\n]*)'[ \t]*$", re.M),
}
_LED = {
    "java": traces._JAVA_FRAME_LINE,
    "node": traces._NODE_FRAME_START,
    "ruby": traces._RUBY_FRAME_LINE,
}

_lines = st.sampled_from(
    [
        "\tat a.b.C.d(C.java:1)",
        "    at a.b.C.d(Native Method)  ",
        "  at java.base/java.lang.Thread.run(Thread.java:829)",
        "\t\tat x.Y.z(Y.java:2)",
        "     at too.deep(Y.java:3)",
        "    at f (/opt/algorithm/src/a.js:1:2)",
        "at g (/x.js:1:1)",
        "/opt/algorithm/src/a.rb:1:in `f'",
        "  /usr/gems/x.rb:12:in 'block in g'",
        "Caused by: java.lang.X: y",
        "",
        " ",
    ]
)


@given(st.lists(st.one_of(_lines, st.text(max_size=20)), max_size=20))
def test_led_patterns_find_what_anchored_ones_find(lines: list[str]) -> None:
    text = "\n".join(lines)
    for name, anchored in _ANCHORED.items():
        led = _LED[name]
        if anchored.groups:  # a pattern without groups is only searched
            assert led.findall("\n" + text) == anchored.findall(text), name
        first, expected = led.search("\n" + text), anchored.search(text)
        assert (first.start() if first else None) == (expected.start() if expected else None)


_message_parts = st.sampled_from(
    ["0x", "0x1F", "deadbeef", "DEADBEEF1", "abcdef12", "12345678", "-", "a", "g", " ", ".", "7"]
)


@given(st.lists(st.one_of(_message_parts, st.text(max_size=12)), max_size=16))
def test_masking_gives_what_the_three_patterns_give(parts: list[str]) -> None:
    message = "".join(parts)
    plain = grouping._UUID.sub("<uuid>", message)
    plain = grouping._HEX.sub("<hex>", plain)
    assert grouping.mask_variable_parts(message) == grouping._NUMBER.sub("<n>", plain).strip()
