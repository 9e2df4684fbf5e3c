"""Reading error strings of every runtime: message, trace, headline, own frames."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors.traces import _OWN_JAVA_FRAME, Origin, Runtime, parse_error, split_error

DOCS_EXAMPLE = 'error:\nAll I do is throw an error\nstacktrace:\nSome(Traceback (most recent call last):\n  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response\n    result = call_algorithm(request, algorithm)\n  File "/usr/local/bin/algorithmia-pipe", line 90, in call_algorithm\n    return algorithm.apply(data)\n  File "./src/testError.py", line 6, in apply\n    raise Exception("All I do is throw an error")\nException: All I do is throw an error)'  # noqa: E501

OLD_PIPE = """error:
Type of media is not supported!
stacktrace:
Some(Traceback (most recent call last):
  File "/opt/algorithm/bin/pipe.py", line 45, in get_response
    result = call_algorithm(request)
  File "/opt/algorithm/bin/pipe.py", line 93, in call_algorithm
    return apply(data)
  File "/opt/algorithm/src/classify.py", line 12, in apply
    raise AlgorithmException('Type of media is not supported!', 'UnsupportedError')
AlgorithmException: 'Type of media is not supported!')"""

JAVA_LEGACY = """error:
boom
stacktrace:
Some(java.lang.IllegalStateException: boom
\tat algorithmia.hello.Hello.apply(Hello.java:12)
\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat com.algorithmia.JarRunner.applyInput(JarRunner.java:145))"""

RUBY_34 = """error:
undefined method 'x' for nil
stacktrace:
Some(/opt/algorithm/src/hello.rb:3:in 'Hello#apply'
/opt/algorithm/bin/pipe.rb:48:in 'call_algorithm')"""

JAVA_MODULES = """error:
boom
stacktrace:
Some(java.lang.IllegalStateException: boom
\tat app//algorithmia.hello.Hello.apply(Hello.java:12)
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:566)
\tat app//com.algorithmia.JarRunner.applyInput(JarRunner.java:145))"""

QUOTED_TRACEBACK = """error:
Command '['python', 'child.py']' returned non-zero exit status 1.
stacktrace:
Some(Traceback (most recent call last):
  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response
    result = call_algorithm(request, algorithm)
  File "./src/runner.py", line 9, in apply
    subprocess.run(cmd, check=True, capture_output=True)
subprocess.CalledProcessError: Command '['python', 'child.py']' returned non-zero exit status 1.
Output: Traceback (most recent call last):
  File "child.py", line 1, in <module>
    1 / 0
ZeroDivisionError: division by zero)"""

NODE_NONE = "error:\ntimeout\nstacktrace:\nSome([None])"
RUST = (
    'error:\nFailed to read image "/srv/app/cache/e2a91f40-7c3d-4b6e-a1f8-5d0c2b9e8a14.png"\n'
    "caused by: Invalid PNG signature.\nstacktrace:\nNone"
)
R_STAGE = "error:\nError in apply(input): object 'x' not found\n\nstacktrace:\nSome(algorithm)"
ADK_LOAD = "error:\nmodel file missing\nstacktrace:\nSome(NoneType: None)"
UNKNOWN = "error:\nsegfault\nstacktrace:\nSome(core dumped at 0x7f00ff)"


@pytest.mark.parametrize(
    ("error", "error_type", "runtime", "headline", "own"),
    [
        (DOCS_EXAMPLE, "AlgorithmError", Runtime.PYTHON,
         "Exception: All I do is throw an error", ["./src/testError.py:6 in apply"]),
        (OLD_PIPE, "UnsupportedError", Runtime.PYTHON,
         "AlgorithmException: 'Type of media is not supported!'",
         ["/opt/algorithm/src/classify.py:12 in apply"]),
        (JAVA_LEGACY, "AlgorithmError", Runtime.JAVA, "java.lang.IllegalStateException: boom",
         ["Hello.java:12 in algorithmia.hello.Hello.apply"]),
        (JAVA_MODULES, "AlgorithmError", Runtime.JAVA, "java.lang.IllegalStateException: boom",
         ["Hello.java:12 in algorithmia.hello.Hello.apply"]),
        (QUOTED_TRACEBACK, "AlgorithmError", Runtime.PYTHON,
         "subprocess.CalledProcessError: Command '['python', 'child.py']' returned non-zero "
         "exit status 1.", ["./src/runner.py:9 in apply"]),
        (RUBY_34, "NoMethodError", Runtime.RUBY, "undefined method 'x' for nil",
         ["/opt/algorithm/src/hello.rb:3 in Hello#apply"]),
        (NODE_NONE, "AlgorithmError", Runtime.NONE, "timeout", []),
        (RUST, "AlgorithmError", Runtime.NONE,
         'Failed to read image "/srv/app/cache/e2a91f40-7c3d-4b6e-a1f8-5d0c2b9e8a14.png"', []),
        (R_STAGE, "AlgorithmError", Runtime.R, "Error in apply(input): object 'x' not found", []),
        (ADK_LOAD, "LoadingError", Runtime.NONE, "model file missing", []),
        (UNKNOWN, "SystemError", Runtime.UNKNOWN, "segfault", []),
    ],
)  # fmt: skip
def test_each_runtime_gives_headline_and_own_frames(
    error: str, error_type: str, runtime: Runtime, headline: str, own: list[str]
) -> None:
    parsed = parse_error(error, error_type)
    assert parsed.runtime is runtime
    assert parsed.headline == headline
    assert [frame.location() for frame in parsed.own_frames] == own


def test_java_9_module_prefixes_do_not_change_the_frames() -> None:
    modern = parse_error(JAVA_MODULES, "AlgorithmError")
    legacy = parse_error(JAVA_LEGACY, "AlgorithmError")
    assert [(f.function, f.origin) for f in modern.frames][:1] == [
        (f.function, f.origin) for f in legacy.frames
    ][:1]
    assert [f.origin for f in modern.frames[1:]] == [Origin.PLATFORM] * 3


def test_split_error_unwraps_some_and_none() -> None:
    assert split_error(RUST)[1] is None
    message, trace = split_error(DOCS_EXAMPLE)
    assert message == "All I do is throw an error"
    assert trace is not None
    assert trace.startswith("Traceback")
    assert trace.endswith("Exception: All I do is throw an error")


def test_platform_frames_are_told_apart(sample_record_by_bug: dict[str, dict[str, str]]) -> None:
    record = sample_record_by_bug["py-notify-channel-id-int"]
    parsed = parse_error(record["error"], record["error_type"])
    origins = [(frame.file.rsplit("/", 1)[-1], frame.origin) for frame in parsed.frames]
    assert origins[-2:] == [("algorithmia-pipe", Origin.PLATFORM)] * 2  # outermost last
    assert origins[0] == ("notifier.py", Origin.OWN)  # innermost first


def test_python_chain_keeps_every_exception(
    sample_record_by_bug: dict[str, dict[str, str]],
) -> None:
    record = sample_record_by_bug["py-hf-checkpoint-unreadable"]
    parsed = parse_error(record["error"], record["error_type"])
    assert parsed.exception_types == ("RuntimeError", "UnicodeDecodeError", "OSError")
    assert parsed.headline.startswith("OSError: Unable to load weights")


def test_java_headline_is_the_algorithms_exception_not_the_runner_wrapper(
    sample_record_by_bug: dict[str, dict[str, str]],
) -> None:
    record = sample_record_by_bug["java-unsatisfiedlink-opencv"]
    parsed = parse_error(record["error"], record["error_type"])
    assert parsed.headline == (
        "java.lang.UnsatisfiedLinkError: no jniopencv_core in java.library.path"
    )
    assert parsed.exception_types[0].startswith("com.algorithmia.JarRunner")
    assert [f.function for f in parsed.own_frames] == [
        "algorithmia.image_tagger.Thumbnailer.decode",
        "algorithmia.image_tagger.image_tagger.apply",
    ]


def test_node_async_error_has_no_own_frame(sample_record_by_bug: dict[str, dict[str, str]]) -> None:
    record = sample_record_by_bug["node-axios-image-fetch-rejected"]
    parsed = parse_error(record["error"], record["error_type"])
    assert parsed.runtime is Runtime.NODE
    assert parsed.own_frames == ()
    assert parsed.frames[0].function == "createError"


def test_multiline_python_message_keeps_first_line_as_headline(
    sample_record_by_bug: dict[str, dict[str, str]],
) -> None:
    record = sample_record_by_bug["py-resnet-state-dict-size-mismatch"]
    parsed = parse_error(record["error"], record["error_type"])
    assert parsed.headline == "RuntimeError: Error(s) in loading state_dict for ResNet:"
    assert "size mismatch" in parsed.chain[-1].message


def test_every_sample_record_parses_with_a_headline(sample: dict[str, object]) -> None:
    records = sample["records"]
    assert isinstance(records, list)
    for record in records:
        parsed = parse_error(record["error"], record["error_type"])
        assert parsed.headline, record["request_id"]
        assert parsed.runtime is not Runtime.UNKNOWN


_trace_lines = st.sampled_from(
    [
        "Traceback (most recent call last):",
        '  File "./src/x.py", line 3, in f',
        '  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response',
        "    return g()",
        "    ^^^^^",
        "ValueError: bad",
        "During handling of the above exception, another exception occurred:",
        "Caused by: java.lang.X: y",
        "\tat a.b.C.d(C.java:1)",
        "\t... 2 more",
        "    at f (/opt/algorithm/src/a.js:1:2)",
        "    at /x:1",
        "/opt/algorithm/src/a.rb:1:in `f'",
        "Some(",
        ")",
        "[None]",
        "",
    ]
)


@given(st.text())
def test_parser_never_raises_on_any_text(text: str) -> None:
    parsed = parse_error(text, "AlgorithmError")
    assert isinstance(parsed.headline, str)


@given(
    st.lists(st.one_of(_trace_lines, st.text(max_size=30)), max_size=30),
    st.text(max_size=40),
)
def test_parser_never_raises_on_trace_shaped_text(lines: list[str], message: str) -> None:
    error = f"error:\n{message}\nstacktrace:\nSome(" + "\n".join(lines) + ")"
    parsed = parse_error(error, "AlgorithmError")
    assert isinstance(parsed.headline, str)
    for frame in parsed.frames:
        assert frame.origin in Origin


_JAVA_TEXT = st.text(alphabet="at /(.\n\tajvlgorithmi$Ab1", max_size=60)


@given(st.lists(st.one_of(_JAVA_TEXT, st.sampled_from(["at ", "/", "algorithmia.", "app//"]))))
def test_own_java_package_search_finds_what_the_backtracking_pattern_finds(
    pieces: list[str],
) -> None:
    """The possessive pattern that looks for the algorithm's own package is the one it stands
    for, without its backtracking."""
    text = "".join(pieces)
    backtracking = re.compile(r"at (?:[^\s/(]*/+)?algorithmia\.")
    found, expected = _OWN_JAVA_FRAME.search(text), backtracking.search(text)
    assert (found and found.span()) == (expected and expected.span())


@pytest.mark.parametrize(
    "trace",
    [
        "java.lang.RuntimeException: x\n\tat algorithmia.a.B.c(B.java:²)",
        "TypeError: x\n    at f (/opt/algorithm/src/x.js:²:3)\n    at /opt/algorithm/src/y.js:5:¹",
    ],
)
def test_a_line_number_of_digits_int_refuses_is_read_without_raising(trace: str) -> None:
    # `str.isdigit` is true of superscripts, which `int` refuses: such a trace once raised.
    parsed = parse_error(f"error:\nx\nstacktrace:\nSome({trace})", "AlgorithmError")
    assert [frame.function for frame in parsed.frames][:1] in (["algorithmia.a.B.c"], ["f"])
    assert parsed.frames[0].line in (None, 3)  # Node's column read as the line, as before
