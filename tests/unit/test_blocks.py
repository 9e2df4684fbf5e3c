"""What people read in Slack: limits, escaping, trace truncation, and snapshots of each message."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from bot.errors.grouping import ErrorGroup, group_records
from bot.errors.records import ErrorRecord, validate_records
from bot.errors.traces import Runtime
from bot.slack.blocks import answers, base
from bot.slack.blocks import query as query_blocks
from bot.usecases.results import FailureKind, LookupFailure, QueryResult

_OUR_TOKENS = re.compile(
    r"<!date\^\d+\^\{date_short_pretty\} at \{time\}\|[^<>]*>|<@U_ALICE>|<@UBOT>"
)
_SLACK_LIMIT = 12_000


def _mrkdwn_texts(message: base.SlackMessage) -> list[str]:
    texts = [message.text]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn":
                texts.append(value["text"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(message.blocks)
    return texts


def _mrkdwn_objects(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [obj for item in value for obj in _mrkdwn_objects(item)]
    if isinstance(value, dict):
        own = [value] if value.get("type") == "mrkdwn" else []
        return own + [obj for item in value.values() for obj in _mrkdwn_objects(item)]
    return []


def _message_size(message: base.SlackMessage) -> int:
    """Characters across the message's text fields, as Slack counts them against its limit."""

    def size(value: Any) -> int:
        if isinstance(value, dict):
            return sum(size(v) for k, v in value.items() if k in ("text", "fields", "elements"))
        if isinstance(value, list):
            return sum(size(v) for v in value)
        return len(value) if isinstance(value, str) else 0

    return size(message.blocks)


def assert_fits_slack(message: base.SlackMessage) -> None:
    assert len(message.blocks) <= base.MAX_BLOCKS
    assert message.blocks or message.text
    assert len(message.text) <= 40_000
    assert _message_size(message) < _SLACK_LIMIT
    for block in message.blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
            assert block["text"]["text"].strip()
        if block["type"] == "section":
            if "text" in block:
                assert 1 <= len(block["text"]["text"]) <= 3000
                assert block["text"]["text"].strip()
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000
                assert field["text"].strip()
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(element["text"].strip() for element in block["elements"])
        if block["type"] == "rich_text":
            for element in block["elements"]:
                assert all(part["text"] for part in element["elements"])


def assert_cannot_ping(message: base.SlackMessage, allowed_mentions: tuple[str, ...] = ()) -> None:
    """No mrkdwn text holds a `<` of its own: no @channel, mention or link can come through.
    `allowed_mentions`: Slack user and user-group ids Slack gave the bot (who resolved or owns
    an alert, whom a subscription notifies)."""
    for text in _mrkdwn_texts(message):
        for user in allowed_mentions:
            text = text.replace(f"<@{base.escape(user)}>", "")
            text = text.replace(f"<!subteam^{base.escape(user)}>", "")
        assert "<" not in _OUR_TOKENS.sub("", text), text
    # Verbatim mrkdwn: Slack makes no links of bare URLs or #channel names either.
    assert all(obj.get("verbatim") is True for obj in _mrkdwn_objects(message.blocks))


def _group(message: str, trace: str | None, **fields: Any) -> ErrorGroup:
    option = "None" if trace is None else f"Some({trace})"
    record = {
        "created_at": 1_764_000_000_000,
        "request_id": "req-1",
        "error": f"error:\n{message}\nstacktrace:\n{option}",
        "error_type": "AlgorithmError",
        "algoversion": "1.0.0",
        "input": '{"a": 1}',
    } | fields
    (group,) = group_records([ErrorRecord.model_validate(record)])
    return group


def _result(groups: list[ErrorGroup], **fields: Any) -> QueryResult:
    return QueryResult(
        target=fields.pop("target", "acme/image_tagger"),
        groups=tuple(groups),
        errors=sum(g.count for g in groups),
        **fields,
    )


_pieces = st.sampled_from(
    [*"<>&@!|`*_~ \n\tabc#^:/", "<!channel>", "<@U1>", "&amp;", "```", "https://evil.example/x",
     "#general", "@here"]
)  # fmt: skip
untrusted = st.lists(_pieces, max_size=200).map("".join) | st.text(max_size=400)


@settings(max_examples=150, deadline=None)
@given(message=untrusted, trace=untrusted, request_id=untrusted, version=untrusted,
       error_type=untrusted, input_text=untrusted, target=untrusted)  # fmt: skip
def test_every_message_fits_and_untrusted_text_cannot_ping(
    message: str,
    trace: str,
    request_id: str,
    version: str,
    error_type: str,
    input_text: str,
    target: str,
) -> None:
    group = _group(
        message,
        trace,
        request_id=request_id or "r",
        algoversion=version,
        error_type=error_type,
        input=input_text,
    )
    result = _result([group], target=target)
    reply = query_blocks.group_reply(group, show_input=True).message
    failure = answers.lookup_failed(LookupFailure(FailureKind.FORBIDDEN, target, message))
    for built in (
        query_blocks.query_parent(result, "U_ALICE"),
        reply,
        query_blocks.no_errors(result),
        failure,
        answers.usage(message),
        answers.invite_me("UBOT", message),
        answers.lookup_started(target),
    ):
        assert_fits_slack(built)
        assert_cannot_ping(built)


@settings(max_examples=100, deadline=None)
@given(trace=untrusted, size=st.integers(min_value=0, max_value=6000))
def test_traces_and_inputs_go_only_in_preformatted_blocks(trace: str, size: int) -> None:
    """A code block that is cut can never stay open: traces and inputs never enter mrkdwn (no
    fence to close, mentions not live) but rich-text preformatted elements, closed by
    structure, whatever their length."""
    marker = "QQTRACEQQ"
    group = _group("boom", f"{trace}{marker}{'x' * size}", input=f"{marker}input")
    reply = query_blocks.group_reply(group, show_input=True).message
    assert not any(marker in text for text in _mrkdwn_texts(reply))
    preformatted = [
        element["elements"][0]["text"]
        for block in reply.blocks
        if block["type"] == "rich_text"
        for element in block["elements"]
        if element["type"] == "rich_text_preformatted"
    ]
    assert len(preformatted) == 2
    assert all(text.strip() for text in preformatted)
    assert all(len(text) <= query_blocks.TRACE_BUDGET for text in preformatted)


def test_escaping_turns_pings_into_text() -> None:
    assert base.escape("<!channel> & <@U1|bob>") == "&lt;!channel&gt; &amp; &lt;@U1|bob&gt;"


def test_cut_escaped_never_splits_an_entity() -> None:
    for limit in range(2, 20):
        shortened = base.cut_escaped("a&b<c>" * 5, limit)
        assert len(shortened) <= limit
        assert not re.search(r"&[a-z]*…$", shortened), shortened


def test_fixture_with_slack_syntax_is_escaped(sample_record_by_bug: dict[str, Any]) -> None:
    record = sample_record_by_bug["py-notify-channel-id-int"]
    (group,) = group_records([ErrorRecord.model_validate(record)])
    built = query_blocks.group_reply(group, show_input=True).message
    assert_cannot_ping(built)
    assert "&lt;!here&gt;" in built.text
    raw = [b for b in built.blocks if b["type"] == "rich_text"]
    assert "<!here> cc <@U12345>" in str(raw)  # rich text shows it as typed, unparsed


_LONG_PY = (
    "Traceback (most recent call last):\n"
    + "".join(
        f'  File "/usr/local/lib/python3.12/site-packages/lib{i}.py", line {i}, in f{i}\n'
        f"    call_{i}()\n"
        for i in range(300)
    )
    + "ValueError: the final line"
)


@given(st.integers(min_value=200, max_value=5000))
def test_a_long_python_trace_keeps_the_exception_line_and_says_what_was_cut(budget: int) -> None:
    trimmed = query_blocks.trim_trace(_LONG_PY, Runtime.PYTHON, budget)
    assert len(trimmed.text) <= budget
    assert trimmed.text.endswith("ValueError: the final line")
    assert trimmed.text.startswith("… ")
    assert "cut above" in trimmed.text.splitlines()[0]
    kept = trimmed.text.split("\n", 1)[1]
    assert len(_LONG_PY) - len(kept) == trimmed.cut_chars
    assert _LONG_PY.endswith(kept)


def test_a_huge_final_line_keeps_the_exception_type_and_the_frames_above() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        + "".join(f'  File "./src/m{i}.py", line {i}, in f{i}\n    g()\n' for i in range(40))
        + "ValueError: "
        + "x" * 10_000
    )
    trimmed = query_blocks.trim_trace(trace, Runtime.PYTHON)
    last = trimmed.text.splitlines()[-1]
    assert last.startswith("ValueError: xxx")
    assert last.endswith("…")
    assert 'File "./src/m39.py", line 39, in f39' in trimmed.text
    assert len(trimmed.text) <= query_blocks.TRACE_BUDGET


def test_a_record_with_a_blank_message_is_headed_by_its_type() -> None:
    group = _group("   ", None, error_type="")
    header = query_blocks.group_reply(group).message.blocks[0]
    assert header["text"]["text"] == "AlgorithmError"


def test_a_node_trace_is_cut_below_keeping_the_innermost_frames() -> None:
    trace = "TypeError: x is not a function\n" + "".join(
        f"    at f{i} (/opt/algorithm/src/a.js:{i}:1)\n" for i in range(400)
    )
    trimmed = query_blocks.trim_trace(trace, Runtime.NODE, 1000)
    assert trimmed.text.startswith("TypeError: x is not a function\n    at f0 ")
    assert "cut below" in trimmed.text.splitlines()[-1]


def test_a_short_trace_is_shown_whole_and_not_attached(
    sample_record_by_bug: dict[str, Any],
) -> None:
    (group,) = group_records(
        [ErrorRecord.model_validate(sample_record_by_bug["py-pil-antialias-removed"])]
    )
    reply = query_blocks.group_reply(group)
    assert reply.trace_file is None
    shown = [
        b["elements"][0]["elements"][0]["text"]
        for b in reply.message.blocks
        if b["type"] == "rich_text"
    ]
    assert shown == [group.latest.parsed.trace]


def test_a_long_trace_is_attached_in_full(sample_record_by_bug: dict[str, Any]) -> None:
    (group,) = group_records(
        [ErrorRecord.model_validate(sample_record_by_bug["py-vitmatte-channel-mismatch"])]
    )
    reply = query_blocks.group_reply(group)
    assert reply.trace_file is not None
    assert reply.trace_file.content == group.latest.parsed.trace
    assert reply.trace_file.filename == f"trace-{group.latest.record.request_id}.txt"
    assert "cut above" in str(reply.message.blocks)
    assert_fits_slack(reply.message)


def test_parent_names_the_algorithm_counts_and_what_is_not_shown(sample: dict[str, Any]) -> None:
    groups = group_records(validate_records(sample["records"]).records)
    parent = query_blocks.query_parent(_result(groups), "U_ALICE")
    text = str(parent.blocks)
    assert "*acme/image_tagger*: 80 errors in 25 groups in the last 7 days" in text
    assert "5 more not shown" in text
    assert parent.text == "acme/image_tagger: 80 errors in 25 groups"


def test_input_is_shown_only_when_asked(sample_record_by_bug: dict[str, Any]) -> None:
    record = sample_record_by_bug["py-pil-antialias-removed"]
    (group,) = group_records([ErrorRecord.model_validate(record)])
    assert record["input"] not in str(query_blocks.group_reply(group).message.blocks)
    assert record["input"] in str(query_blocks.group_reply(group, show_input=True).message.blocks)


@pytest.mark.parametrize(
    "bug",
    [
        "py-hf-checkpoint-unreadable",
        "java-unsatisfiedlink-opencv",
        "node-timeout-string-rejection",
        "rb-minimagick-invalid-png-header",
        "rs-taxonomy-missing-labels-field",
    ],
)
def test_group_reply_snapshot(
    sample_record_by_bug: dict[str, Any], bug: str, snapshot: SnapshotAssertion
) -> None:
    (group,) = group_records([ErrorRecord.model_validate(sample_record_by_bug[bug])])
    assert query_blocks.group_reply(group).message == snapshot


def test_parent_and_answers_snapshot(sample: dict[str, Any], snapshot: SnapshotAssertion) -> None:
    groups = group_records(validate_records(sample["records"]).records)
    assert query_blocks.query_parent(_result(groups[:3], options="since:2d"), "U_ALICE") == snapshot
    assert query_blocks.no_errors(_result([], options="type:KeyError")) == snapshot
    assert answers.usage("`acme` is not an algorithm: write `owner/name` or `id:UUID`") == snapshot
    for kind in FailureKind:
        assert answers.lookup_failed(LookupFailure(kind, "acme/x", "server said no")) == snapshot


def test_times_datetime_cannot_hold_are_written_not_refused() -> None:
    """A cluster whose records carry microseconds where milliseconds belong (or a clock far
    off): the answer, its thread and the `errors` output are still given, each time written
    out, however far in the future or the past."""
    from bot import terminal
    from bot.digest.plan import sighting
    from bot.domain.alerts import new_thread
    from bot.slack.blocks import alerts as alert_blocks

    for created_at, year in [(1_764_000_000_000_000, "57868-"), (-(10**15), "-29719-")]:
        group = _group("boom", None, created_at=created_at)
        answer = query_blocks.query_answer(_result([group]))
        (reply,) = answer.replies
        assert f"|{year}" in str(reply.message.blocks)
        assert terminal.result_as_text(_result([group])).count(year) == 2  # first, last seen
        thread = new_thread("C1", "acme/image_tagger", group.fingerprint, sighting(group))
        assert f"|{year}" in str(alert_blocks.alert_parent(thread).blocks)


def test_options_echoed_in_inline_code_cannot_end_it_early() -> None:
    """A backtick typed in an option would end the code span, and what follows would be read
    as formatting: it is shown as its look-alike instead, the rest as typed."""
    group = _group("ValueError: bad", None)
    options = "type:`x`*bold"
    parent = str(query_blocks.query_parent(_result([group], options=options), "U1").blocks)
    assert "matching `type:\u02cbx\u02cb*bold`" in parent
    empty = query_blocks.no_errors(_result([], options=options)).text
    assert "matching `type:\u02cbx\u02cb*bold`." in empty
