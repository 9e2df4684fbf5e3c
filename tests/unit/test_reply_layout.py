"""What a reader sees first in a group's thread reply and in the `errors` terminal output.

The exception line and the algorithm's innermost own frame are within the first 15 lines shown
(header and fields included), whatever the runtime and however long the trace; the lines of a
message after its headline are shown (up to `DETAIL_LINES`), the headline staying one line.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from bot.errors.grouping import ErrorGroup, group_records
from bot.errors.records import ErrorRecord
from bot.errors.traces import Runtime
from bot.slack.blocks import query
from bot.terminal import result_as_text
from bot.testing.sample_cluster import sample_bug_labels, sample_records
from bot.testing.transcript import render_blocks
from bot.usecases.results import QueryResult
from tests.unit.test_blocks import assert_cannot_ping, assert_fits_slack, untrusted

FIRST_LINES = 15
_NOW_MS = 1_764_000_000_000
_PREFORMATTED = "  │ "
_TERMINAL_DETAIL = "    │ "
_LEAD = "_Split off from the alert of 2 days ago_: a new version"
_PING = "<!channel> <@U12345> &amp; <https://evil.example|click> @here #general"


# -- helpers -------------------------------------------------------------------------------


def _rendered(group: ErrorGroup, lead: str | None = None) -> list[str]:
    message = query.group_reply(group, lead=lead).message
    return render_blocks(message.blocks, message.text).split("\n")


def _unticked(text: str) -> str:
    return text.replace("`", "")


def _line_of(lines: list[str], needle: str) -> int | None:
    """The index of the first line holding `needle` (backticks ignored on both sides)."""
    wanted = _unticked(needle)
    return next((i for i, line in enumerate(lines) if wanted in _unticked(line)), None)


def _show(lines: list[str]) -> str:
    return "\n".join(f"{i + 1:3} {line}" for i, line in enumerate(lines[:40]))


def assert_reads_first(
    group: ErrorGroup, lead: str | None = None, *, headline: str = "", own: str = ""
) -> None:
    """The headline (cut at the header's 150 characters: a prefix is compared) and the innermost
    own frame's location are within the first `FIRST_LINES` rendered lines. `headline` and
    `own` default to what the parser found (no own frame: only the headline is checked)."""
    lines = _rendered(group, lead)
    headline = headline or group.headline or group.error_type
    head = _line_of(lines, headline[:100].strip())
    assert head is not None, f"headline {headline!r} not shown:\n{_show(lines)}"
    assert head < FIRST_LINES, f"headline on line {head + 1}:\n{_show(lines)}"
    frame = group.latest.parsed.innermost_own_frame
    own = own or (frame.location() if frame is not None else "")
    if own:
        where = _line_of(lines, own[:100])
        assert where is not None, f"own frame {own!r} not shown:\n{_show(lines)}"
        assert where < FIRST_LINES, f"own frame {own!r} on line {where + 1}:\n{_show(lines)}"


def _one_group(error: str, error_type: str = "AlgorithmError") -> ErrorGroup:
    record = {
        "created_at": _NOW_MS,
        "request_id": "req-layout-1",
        "error": error,
        "error_type": error_type,
        "algoversion": "1.2.0",
        "input": '{"image": "data://acme/in/x.png"}',
    }
    (group,) = group_records([ErrorRecord.model_validate(record)])
    return group


def _error(message: str, trace: str | None) -> str:
    return f"error:\n{message}\nstacktrace:\n" + ("None" if trace is None else f"Some({trace})")


def _preformatted_texts(group: ErrorGroup) -> list[str]:
    return [
        element["elements"][0]["text"]
        for block in query.group_reply(group).message.blocks
        if block["type"] == "rich_text"
        for element in block["elements"]
        if element["type"] == "rich_text_preformatted"
    ]


def _contains_run(lines: list[str], run: list[str]) -> bool:
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))


# -- 1. every sample record ----------------------------------------------------------------


def _sample_by_bug() -> dict[str, list[dict[str, Any]]]:
    labels = sample_bug_labels()
    by_bug: dict[str, list[dict[str, Any]]] = {}
    for record in sample_records(_NOW_MS):
        by_bug.setdefault(labels[record["request_id"]], []).append(record)
    return by_bug


_SAMPLE = _sample_by_bug()


def test_the_sample_has_every_runtime() -> None:
    assert len(_SAMPLE) == 25
    assert {bug.split("-")[0] for bug in _SAMPLE} == {"py", "java", "node", "rb", "rs"}


@pytest.mark.parametrize("lead", [None, _LEAD], ids=["query", "alert"])
@pytest.mark.parametrize("bug", sorted(_SAMPLE))
def test_every_sample_reply_shows_the_exception_and_own_frame_first(
    bug: str, lead: str | None
) -> None:
    for record in _SAMPLE[bug]:
        (group,) = group_records([ErrorRecord.model_validate(record)])
        assert "\n" not in group.headline
        assert_reads_first(group, lead)
        assert_fits_slack(query.group_reply(group, lead=lead).message)


# -- 2. long synthetic traces per runtime ---------------------------------------------------

_PIPE = (
    '  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response\n'
    "    result = call_algorithm(request, algorithm)\n"
    '  File "/usr/local/bin/algorithmia-pipe", line 90, in call_algorithm\n'
    "    return algorithm.apply(data)\n"
)
_PY_FINAL_FIRST = "models.ModelUnavailable: model 'clip-vit' could not be loaded:"
_PY_FINAL_REST = [f"  shard {i:02}: checksum mismatch (expected {i:08x})" for i in range(39)]
_PY_CAUSE_LINE = "OSError: [Errno 5] Input/output error: '/srv/models/clip/shard-00.bin'"


def _py_chained() -> str:
    library = "".join(
        f'  File "/usr/local/lib/python3.12/site-packages/transformers/l{i}.py", line {i + 1},'
        f" in load_{i}\n    return load_{i + 1}(path)\n"
        for i in range(300)
    )
    cause = (
        "Traceback (most recent call last):\n"
        '  File "./src/storage.py", line 46, in fetch\n'
        "    return open(path, 'rb').read()\n"
        f"{_PY_CAUSE_LINE}\n"
    )
    final = (
        "Traceback (most recent call last):\n"
        f"{_PIPE}"
        '  File "./src/image_tagger.py", line 31, in apply\n'
        "    return TAGGER.tag(data)\n"
        '  File "./src/models.py", line 44, in _load_clip\n'
        "    return CLIPModel.from_pretrained(path)\n"
        f"{library}" + "\n".join([_PY_FINAL_FIRST, *_PY_FINAL_REST])
    )
    trace = (
        cause + "\nThe above exception was the direct cause of the following exception:\n\n" + final
    )
    return _error("\n".join([_PY_FINAL_FIRST, *_PY_FINAL_REST]), trace)


_JAVA_RUNNER = (
    "com.algorithmia.JarRunner$AlgorithmiaRunnerException: {cause}\n"
    "\tat com.algorithmia.JarRunner$ErrorPair.registerNewException(JarRunner.java:245)\n"
    "\tat com.algorithmia.JarRunner.tryJsonApply(JarRunner.java:118)\n"
    "\tat com.algorithmia.Pipe.tryJsonApply(Pipe.java:135)\n"
    "\tat com.algorithmia.Pipe.main(Pipe.java:101)\n"
)
_JAVA_REFLECTION = (
    "\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n"
    "\tat java.lang.reflect.Method.invoke(Method.java:498)\n"
    "\tat com.algorithmia.JarRunner.applyInput(JarRunner.java:145)\n"
)
_JAVA_HEAD = "java.lang.IllegalStateException: thumbnail pipeline failed for data://acme/in/x.png"
_JAVA_ROOT = "java.io.IOException: Unsupported Image Type"


def _java_frames(count: int) -> str:
    return "".join(
        f"\tat org.apache.commons.imaging.Stage{i}.run(Stage{i}.java:{i + 10})\n"
        for i in range(count)
    )


def _java_own_in_wrapper() -> str:
    """The own frame is 200 library frames deep in the headline's exception; the root cause
    has library frames only."""
    trace = (
        _JAVA_RUNNER.format(cause=_JAVA_HEAD)
        + f"Caused by: {_JAVA_HEAD}\n"
        + _java_frames(200)
        + "\tat algorithmia.image_tagger.Thumbnailer.render(Thumbnailer.java:88)\n"
        + "\tat algorithmia.image_tagger.image_tagger.apply(image_tagger.java:47)\n"
        + _JAVA_REFLECTION
        + "\t... 2 more\n"
        + f"Caused by: {_JAVA_ROOT}\n"
        + "\tat com.twelvemonkeys.imageio.plugins.jpeg.JPEGImageReader.read(JPEGImageReader.java:1012)\n"  # noqa: E501
        + "\t... 205 more"
    )
    return _error(_JAVA_HEAD, trace)


def _java_own_in_root_cause() -> str:
    """The own frame is 200 library frames deep in the deepest `Caused by:`."""
    trace = (
        _JAVA_RUNNER.format(cause=_JAVA_HEAD)
        + f"Caused by: {_JAVA_HEAD}\n"
        + "\tat algorithmia.image_tagger.image_tagger.apply(image_tagger.java:52)\n"
        + _JAVA_REFLECTION
        + "\t... 2 more\n"
        + f"Caused by: {_JAVA_ROOT}\n"
        + _java_frames(200)
        + "\tat algorithmia.image_tagger.ImageLoader.fromUrl(ImageLoader.java:61)\n"
        + "\tat algorithmia.image_tagger.image_tagger.apply(image_tagger.java:50)\n"
        + "\t... 5 more"
    )
    return _error(_JAVA_HEAD, trace)


_NODE_HEAD = "TypeError: Cannot read properties of undefined (reading 'width')"


def _node_deep() -> str:
    frames = "".join(
        f"    at Layer{i}.apply (/opt/algorithm/node_modules/jimp/dist/l{i}.js:{i + 1}:9)\n"
        for i in range(297)
    )
    trace = (
        f"{_NODE_HEAD}\n"
        + frames
        + "    at fitBox (/opt/algorithm/src/geometry.js:22:31)\n"
        + "    at start_call (/opt/algorithm/bin/pipe.js:11:19)\n"
        + "    at Interface.emit (node:events:519:28)"
    )
    return _error(_NODE_HEAD, trace)


_RUBY_HEAD = "undefined method `columns' for nil:NilClass"


def _ruby_deep() -> str:
    frames = "".join(
        f"/usr/local/bundle/gems/mini_magick-4.5.1/lib/mini_magick/m{i}.rb:{i + 1}:in `step{i}'\n"
        for i in range(200)
    )
    trace = (
        frames
        + "/opt/algorithm/src/thumbnails.rb:19:in `resize'\n"
        + "/opt/algorithm/src/image_tagger.rb:14:in `apply'\n"
        + "/opt/algorithm/bin/pipe.rb:48:in `call_algorithm'\n"
        + "/opt/algorithm/bin/pipe.rb:51:in `<main>'"
    )
    return _error(_RUBY_HEAD, trace)


@pytest.mark.parametrize(
    ("error", "error_type", "runtime", "headline", "own"),
    [
        (_py_chained(), "AlgorithmError", Runtime.PYTHON, _PY_FINAL_FIRST,
         "./src/models.py:44 in _load_clip"),
        (_java_own_in_wrapper(), "AlgorithmError", Runtime.JAVA, _JAVA_HEAD,
         "Thumbnailer.java:88 in algorithmia.image_tagger.Thumbnailer.render"),
        (_java_own_in_root_cause(), "AlgorithmError", Runtime.JAVA, _JAVA_HEAD,
         "ImageLoader.java:61 in algorithmia.image_tagger.ImageLoader.fromUrl"),
        (_node_deep(), "AlgorithmError", Runtime.NODE, _NODE_HEAD,
         "/opt/algorithm/src/geometry.js:22 in fitBox"),
        (_ruby_deep(), "NoMethodError", Runtime.RUBY, _RUBY_HEAD,
         "/opt/algorithm/src/thumbnails.rb:19 in resize"),
    ],
    ids=["python-chained", "java-own-in-wrapper", "java-own-in-root-cause", "node", "ruby"],
)  # fmt: skip
@pytest.mark.parametrize("lead", [None, _LEAD], ids=["query", "alert"])
def test_a_long_trace_keeps_the_exception_and_own_frame_first(
    error: str, error_type: str, runtime: Runtime, headline: str, own: str, lead: str | None
) -> None:
    group = _one_group(error, error_type)
    parsed = group.latest.parsed
    assert parsed.runtime is runtime
    assert group.headline == headline
    assert parsed.innermost_own_frame is not None
    assert parsed.innermost_own_frame.location() == own
    assert_reads_first(group, lead)
    reply = query.group_reply(group, lead=lead)
    assert_fits_slack(reply.message)
    assert_cannot_ping(reply.message)
    assert reply.trace_file is not None  # cut, so attached whole
    assert reply.trace_file.content == parsed.trace
    assert all(len(text) <= query.TRACE_BUDGET for text in _preformatted_texts(group))


def test_a_python_chain_is_headed_by_the_final_exception_which_the_cut_trace_keeps() -> None:
    group = _one_group(_py_chained())
    reply = query.group_reply(group)
    header = next(b for b in reply.message.blocks if b["type"] == "header")
    assert header["text"]["text"] == _PY_FINAL_FIRST
    assert _PY_CAUSE_LINE not in header["text"]["text"]
    trace_shown = _preformatted_texts(group)[-1]
    assert len(trace_shown) <= query.TRACE_BUDGET
    assert "cut above" in trace_shown.splitlines()[0]
    assert _PY_FINAL_FIRST in trace_shown.splitlines()
    # The frames just above the final message are not crowded out by its 40 lines.
    assert "/transformers/l299.py" in trace_shown
    lines = _rendered(group)
    assert _line_of(lines, _PY_FINAL_FIRST) == 0
    cause = _line_of(lines, _PY_CAUSE_LINE)
    assert cause is None or cause >= FIRST_LINES


# -- 3. multi-line messages -----------------------------------------------------------------

_RUBY_FIRST = (
    "`convert /srv/scratch/mini_magick20251123-7-1x2y3z.jpg -resize 256x256 "
    "/srv/scratch/thumb.jpg` failed with error:"
)
_RUBY_IDENTIFY = (
    " identify: improper image header `/srv/scratch/mini_magick20251123-7-1x2y3z.jpg' @ "
    "error/jpeg.c/JPEGErrorHandler/332."
)


def _detail_lines(count: int) -> list[str]:
    lines = [f"\tline {i}: size mismatch for layer{i}.weight" for i in range(count)]
    lines[min(1, count - 1)] = f"\tcc {_PING} see {_PING}"
    return lines


def _python_multiline(first: str, rest: list[str]) -> tuple[str, str]:
    message = "\n".join([first, *rest])
    trace = (
        "Traceback (most recent call last):\n"
        f"{_PIPE}"
        '  File "./src/models.py", line 61, in _load_resnet\n'
        '    net.load_state_dict(checkpoint["state_dict"])\n'
        '  File "/usr/local/lib/python3.9/site-packages/torch/nn/modules/module.py", line 1671,'
        " in load_state_dict\n"
        "    raise RuntimeError(msg)\n"
        f"{message}"
    )
    return _error(message, trace), "AlgorithmError"


def _java_multiline(first: str, rest: list[str]) -> tuple[str, str]:
    exception = "\n".join([first, *rest])
    trace = (
        _JAVA_RUNNER.format(cause=exception)
        + f"Caused by: {exception}\n"
        + "\tat com.fasterxml.jackson.databind.ObjectMapper.readValue(ObjectMapper.java:3494)\n"
        + "\tat algorithmia.image_tagger.Taxonomy.load(Taxonomy.java:28)\n"
        + _JAVA_REFLECTION
        + "\t... 2 more"
    )
    return _error(exception, trace), "AlgorithmError"


def _node_multiline(first: str, rest: list[str]) -> tuple[str, str]:
    message = "\n".join([first, "", *rest, ""])
    trace = (
        f"{message}\n"
        "    at checkChannels (/opt/algorithm/src/image_tagger.js:52:10)\n"
        "    at Object.apply (/opt/algorithm/src/image_tagger.js:41:3)\n"
        "    at start_call (/opt/algorithm/bin/pipe.js:11:19)"
    )
    return _error(message, trace), "AlgorithmError"


def _ruby_multiline(first: str, rest: list[str]) -> tuple[str, str]:
    message = "\n".join([first, *rest, ""])
    trace = (
        "/usr/local/bundle/gems/mini_magick-4.5.1/lib/mini_magick/shell.rb:17:in `run'\n"
        "/opt/algorithm/src/thumbnails.rb:19:in `resize'\n"
        "/opt/algorithm/bin/pipe.rb:51:in `<main>'"
    )
    return _error(message, trace), "MiniMagick::Error"


def _rust_multiline(first: str, rest: list[str]) -> tuple[str, str]:
    return _error("\n".join([first, *rest]), None), "AlgorithmError"


def _r_multiline(first: str, rest: list[str]) -> tuple[str, str]:
    return _error("\n".join([first, *rest]) + "\n", "algorithm"), "AlgorithmError"


_RUNTIMES = {
    "python": (_python_multiline, Runtime.PYTHON,
               "RuntimeError: Error(s) in loading state_dict for ResNet:"),
    "java": (_java_multiline, Runtime.JAVA,
             "com.fasterxml.jackson.databind.exc.MismatchedInputException: Cannot deserialize"),
    "node": (_node_multiline, Runtime.NODE,
             "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:"),
    "ruby": (_ruby_multiline, Runtime.RUBY, _RUBY_FIRST),
    "rust": (_rust_multiline, Runtime.NONE, 'Failed to read image "/srv/app/cache/x.png"'),
    "r": (_r_multiline, Runtime.R, "Error in readPNG(path) :"),
}  # fmt: skip


def _expected_details(rest: list[str]) -> list[str]:
    shown = rest[: query.DETAIL_LINES]
    if len(rest) > query.DETAIL_LINES:
        more = len(rest) - query.DETAIL_LINES
        shown = [*shown, f"… {more} more line" + ("" if more == 1 else "s")]
    return shown


def _details_cases() -> list[Any]:
    cases = []
    for name in sorted(_RUNTIMES):
        for count in (1, 3, query.DETAIL_LINES, query.DETAIL_LINES + 1, 40):
            cases.append(pytest.param(name, count, id=f"{name}-{count}"))
    return cases


@pytest.mark.parametrize(("runtime_name", "count"), _details_cases())
def test_the_lines_after_the_headline_are_shown_in_the_reply_and_terminal(
    runtime_name: str, count: int
) -> None:
    build, runtime, first = _RUNTIMES[runtime_name]
    rest = _detail_lines(count)
    group = _one_group(*build(first, rest))
    parsed = group.latest.parsed
    assert parsed.runtime is runtime
    assert group.headline == first
    assert parsed.details.split("\n") == [line for line in rest if line.strip()]
    expected = _expected_details(rest)

    reply = query.group_reply(group)
    header = next(b for b in reply.message.blocks if b["type"] == "header")
    assert header["text"]["text"] == first  # one line
    lines = _rendered(group)
    assert lines[0] == first
    if runtime in (Runtime.NONE, Runtime.R):
        # No trace: the message block below shows the whole message, every line, once.
        (message,) = _preformatted_texts(group)
        assert message.rstrip("\n").split("\n") == [first, *(line for line in rest if line.strip())]
    else:
        assert _preformatted_texts(group)[0] == "\n".join(expected)
        assert _contains_run(lines, [_PREFORMATTED + line for line in expected]), _show(lines)
    assert_fits_slack(reply.message)
    assert_cannot_ping(reply.message)

    text = result_as_text(QueryResult("acme/image_tagger", (group,), group.count)).split("\n")
    run = [f"[1] {first}", *(_TERMINAL_DETAIL + line for line in expected)]
    assert _contains_run(text, run), "\n".join(text)


def test_rubys_failed_with_error_shows_what_failed() -> None:
    """The issue's example: the cause is on the line after `… failed with error:`."""
    group = _one_group(*_ruby_multiline(_RUBY_FIRST, [_RUBY_IDENTIFY]))
    lines = _rendered(group)
    assert lines[0] == _RUBY_FIRST
    assert _PREFORMATTED + _RUBY_IDENTIFY in lines[:FIRST_LINES]
    text = result_as_text(QueryResult("acme/image_tagger", (group,), 1)).split("\n")
    assert _contains_run(text, [f"[1] {_RUBY_FIRST}", _TERMINAL_DETAIL + _RUBY_IDENTIFY])


def test_a_headline_longer_than_the_header_is_shown_whole_below_it() -> None:
    first = "ValueError: " + "the input image is far too large to be tagged " * 5
    group = _one_group(*_python_multiline(first.strip(), ["\tsecond line"]))
    header = next(b for b in query.group_reply(group).message.blocks if b["type"] == "header")
    assert len(header["text"]["text"]) <= 150
    assert header["text"]["text"].endswith("…")
    assert _preformatted_texts(group)[0] == f"{first.strip()}\n\tsecond line"
    assert_reads_first(group)


@settings(max_examples=60, deadline=None)
@given(first=untrusted, detail=untrusted)
@pytest.mark.parametrize("runtime_name", sorted(_RUNTIMES))
def test_untrusted_message_lines_cannot_ping(runtime_name: str, first: str, detail: str) -> None:
    build, _, _ = _RUNTIMES[runtime_name]
    lines = [detail, _PING, *detail.split("\n")[:20]]
    group = _one_group(*build(first.replace("\n", " ") or "boom", lines))
    reply = query.group_reply(group)
    assert_fits_slack(reply.message)
    assert_cannot_ping(reply.message)
    assert "\n" not in group.headline
    header = next(b for b in reply.message.blocks if b["type"] == "header")
    assert "\n" not in header["text"]["text"]


def test_the_untrusted_details_of_every_runtime_reach_the_reply_unparsed() -> None:
    for build, _, first in _RUNTIMES.values():
        group = _one_group(*build(first, [f"\tcc {_PING}"]))
        reply = query.group_reply(group)
        assert_cannot_ping(reply.message)
        shown = _preformatted_texts(group)[0].rstrip("\n")  # shown as typed, not a ping
        assert shown in (f"\tcc {_PING}", f"{first}\n\tcc {_PING}")


def _long_assertion_diff() -> str:
    error, _ = _node_multiline(
        "AssertionError [ERR_ASSERTION]: Expected values to be strictly deep-equal:",
        [f"+   'label-{i}': 0.{i:04}," for i in range(120)],
    )
    return error


_JACKSON_FIRST = "com.fasterxml.jackson.databind.exc.MismatchedInputException: Cannot deserialize"
_UNRECOGNIZED = (
    'com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException: Unrecognized field "lables" '
    "(known properties: " + ", ".join(f'"p{i}"' for i in range(400)) + ")"
)


@pytest.mark.parametrize(
    ("error", "runtime", "headline", "own"),
    [
        (_java_multiline(_JACKSON_FIRST, _detail_lines(40))[0], Runtime.JAVA, _JACKSON_FIRST,
         "Taxonomy.java:28 in algorithmia.image_tagger.Taxonomy.load"),
        (_java_multiline(_JACKSON_FIRST, [f"\tline {i}: mismatch" for i in range(100)])[0],
         Runtime.JAVA, _JACKSON_FIRST,
         "Taxonomy.java:28 in algorithmia.image_tagger.Taxonomy.load"),
        (_java_multiline(_UNRECOGNIZED, [])[0], Runtime.JAVA, _UNRECOGNIZED,
         "Taxonomy.java:28 in algorithmia.image_tagger.Taxonomy.load"),
        (_long_assertion_diff(), Runtime.NODE,
         "AssertionError [ERR_ASSERTION]: Expected values to be strictly deep-equal:",
         "/opt/algorithm/src/image_tagger.js:52 in checkChannels"),
    ],
    ids=["java-41-line-message", "java-101-line-message", "java-3000-char-line",
         "node-121-line-assertion-diff"],
)  # fmt: skip
def test_a_long_message_before_the_first_frame_still_shows_the_own_frame_first(
    error: str, runtime: Runtime, headline: str, own: str
) -> None:
    group = _one_group(error)
    assert_reads_first(group, headline=headline, own=own)
    assert group.latest.parsed.runtime is runtime


def test_the_terminal_shows_control_characters_of_the_error_text_rather_than_obeying_them() -> None:
    """Error text is the algorithm's and its input's: printed raw, an escape sequence would
    recolour or retitle the reader's terminal, a carriage return hide what came before it."""
    hostile = "ValueError: bad \x1b[31mRED\x1b[0m \x1b]0;pwned\x07 input\rhidden \u202eevil"
    trace = (
        'Traceback (most recent call last):\r\n  File "/opt/algorithm/src/app.py", line 3, in apply'
        f"\r\n    run()\r\n{hostile}"
    )
    record = ErrorRecord(
        created_at=1_700_000_000_000, request_id="req-1", error_type="AlgorithmError",
        error=f"error:\n{hostile}\nstacktrace:\nSome({trace})",
    )  # fmt: skip
    (group,) = group_records([record])
    text = result_as_text(QueryResult("acme/image_tagger", (group,), 1), traces=True)
    assert not any(ord(c) < 0x20 and c not in "\n" for c in text)
    assert "\u202e" not in text
    assert r"bad \x1b[31mRED\x1b[0m \x1b]0;pwned\x07 input\x0dhidden \u202eevil" in text
    assert '      File "/opt/algorithm/src/app.py", line 3, in apply\n' in text  # CRLF: a line
