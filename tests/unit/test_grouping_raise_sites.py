"""Raise sites: the same own frames reaching two different failures inside a library are two
bugs (fingerprint version 2), while runtime versions, line shifts and exhausted stacks or heaps
keep one bug one group."""

from __future__ import annotations

import re
from typing import Any

from bot.errors.grouping import fingerprint, legacy_fingerprint
from bot.errors.traces import parse_error


def _fp(error: str, error_type: str = "AlgorithmError") -> str:
    return fingerprint(parse_error(error, error_type), error_type)


def _v1(error: str, error_type: str = "AlgorithmError") -> str:
    return legacy_fingerprint(parse_error(error, error_type), error_type)


def _shift_line_numbers(error: str, by: int) -> str:
    error = re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + by}", error)
    error = re.sub(r"\.java:(\d+)\)", lambda m: f".java:{int(m.group(1)) + by})", error)
    return re.sub(r"\.js:(\d+)", lambda m: f".js:{int(m.group(1)) + by}", error)


# Python: scikit-learn 0.23 on Python 3.9, both failures reached from one own line --------------

_SKLEARN_CALLER = """Traceback (most recent call last):
  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response
    result = call_algorithm(request, algorithm)
  File "/usr/local/bin/algorithmia-pipe", line 90, in call_algorithm
    return algorithm.apply(data)
  File "./src/image_tagger.py", line 31, in apply
    return TAGGER.tag(data)
  File "./src/tagger.py", line 74, in tag
    scores = self.classifier.scores(features)
  File "./src/classifier.py", line 48, in scores
    return self.model.decision_function(features)
"""
_SKLEARN = "/usr/local/lib/python3.9/site-packages/sklearn"

SKLEARN_FEATURE_COUNT = (
    "error:\nX has 512 features per sample; expecting 2048\nstacktrace:\nSome("
    + _SKLEARN_CALLER
    + f'  File "{_SKLEARN}/linear_model/_base.py", line 283, in decision_function\n'
    '    raise ValueError("X has %d features per sample; expecting %d"\n'
    "ValueError: X has 512 features per sample; expecting 2048)"
)
SKLEARN_NAN = (
    "error:\nInput contains NaN, infinity or a value too large for dtype('float64').\n"
    "stacktrace:\nSome("
    + _SKLEARN_CALLER
    + f'  File "{_SKLEARN}/linear_model/_base.py", line 277, in decision_function\n'
    "    X = check_array(X, accept_sparse='csr')\n"
    f'  File "{_SKLEARN}/utils/validation.py", line 73, in inner_f\n'
    "    return f(**kwargs)\n"
    f'  File "{_SKLEARN}/utils/validation.py", line 645, in check_array\n'
    "    _assert_all_finite(array,\n"
    f'  File "{_SKLEARN}/utils/validation.py", line 97, in _assert_all_finite\n'
    "    raise ValueError(\n"
    "ValueError: Input contains NaN, infinity or a value too large for dtype('float64').)"
)


def test_python_library_raise_site_splits_what_version_1_merged() -> None:
    assert _v1(SKLEARN_FEATURE_COUNT) == _v1(SKLEARN_NAN)
    assert _fp(SKLEARN_FEATURE_COUNT) != _fp(SKLEARN_NAN)


def test_python_same_raise_site_on_other_lines_and_values_is_one_group() -> None:
    other = _shift_line_numbers(SKLEARN_FEATURE_COUNT, 9).replace("512", "300")
    assert other != SKLEARN_FEATURE_COUNT
    assert _fp(other) == _fp(SKLEARN_FEATURE_COUNT)
    assert _fp(_shift_line_numbers(SKLEARN_NAN, 3)) == _fp(SKLEARN_NAN)


def test_python_raise_site_in_a_cause_counts(
    sample_record_by_bug: dict[str, Any],
) -> None:
    # The algorithm wraps the library's ValueError in its own StageError: the wrapper's raise
    # site is its own code, the cause's names the failed check.
    error = sample_record_by_bug["py-vitmatte-channel-mismatch"]["error"]
    check = "line 114, in forward\n    raise ValueError("
    moved = error.replace(check, "line 121, in _check_channels\n    raise ValueError(")
    assert moved != error
    assert _v1(moved) == _v1(error)
    assert _fp(moved) != _fp(error)
    assert _fp(_shift_line_numbers(error, 5)) == _fp(error)


def test_python_frozen_stdlib_modules_of_3_11_keep_the_group() -> None:
    def decoding(python: str, codecs_file: str) -> str:
        return (
            "error:\n'utf-8' codec can't decode byte 0x89 in position 0: invalid start byte\n"
            "stacktrace:\nSome(Traceback (most recent call last):\n"
            '  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response\n'
            '  File "/usr/local/bin/algorithmia-pipe", line 90, in call_algorithm\n'
            '  File "./src/labels.py", line 12, in load_labels\n'
            "    return f.read().splitlines()\n"
            f'  File "{codecs_file}", line 322, in decode\n'
            "    (result, consumed) = self._buffer_decode(data, self.errors, final)\n"
            "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x89 in position 0: "
            "invalid start byte)"
        )

    python_39 = decoding("3.9", "/usr/local/lib/python3.9/codecs.py")
    python_312 = decoding("3.12", "<frozen codecs>")
    assert _fp(python_39) == _fp(python_312)


def test_where_the_recursion_limit_strikes_does_not_split() -> None:
    def recursion(innermost: str) -> str:
        return (
            "error:\nmaximum recursion depth exceeded\nstacktrace:\nSome("
            "Traceback (most recent call last):\n"
            '  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response\n'
            '  File "./src/taxonomy.py", line 40, in walk\n'
            "    return [walk(child) for child in node.children]\n"
            '  File "./src/taxonomy.py", line 40, in walk\n'
            "    return [walk(child) for child in node.children]\n"
            "  [Previous line repeated 992 more times]\n"
            '  File "./src/taxonomy.py", line 38, in walk\n'
            "    if isinstance(node, Mapping):\n"
            f"{innermost}"
            "RecursionError: maximum recursion depth exceeded)"
        )

    in_own_code = recursion("")
    in_abc = recursion(
        '  File "/usr/local/lib/python3.9/abc.py", line 98, in __instancecheck__\n'
        "    return _abc_instancecheck(cls, instance)\n"
    )
    assert _fp(in_own_code) == _fp(in_abc)


# Java: the JPEG reader refusing an image in two places, from the same own call ---------------

_JPEG_SOF = """\tat com.sun.imageio.plugins.jpeg.JPEGImageReader.readImageHeader(Native Method)
\tat com.sun.imageio.plugins.jpeg.JPEGImageReader.readNativeHeader(JPEGImageReader.java:620)
\tat com.sun.imageio.plugins.jpeg.JPEGImageReader.checkTablesOnly(JPEGImageReader.java:348)
\tat com.sun.imageio.plugins.jpeg.JPEGImageReader.gotoImage(JPEGImageReader.java:492)
\tat com.sun.imageio.plugins.jpeg.JPEGImageReader.readHeader(JPEGImageReader.java:613)
\tat com.sun.imageio.plugins.jpeg.JPEGImageReader.readInternal(JPEGImageReader.java:1059)
"""
_UNSUPPORTED_TYPE = (
    "\tat com.sun.imageio.plugins.jpeg.JPEGImageReader.readInternal(JPEGImageReader.java:1068)\n"
)


def _jpeg_sof(error: str) -> str:
    assert _UNSUPPORTED_TYPE in error
    return error.replace(_UNSUPPORTED_TYPE, _JPEG_SOF).replace(
        "Unsupported Image Type", "Unsupported JPEG process: SOF type 0xcf"
    )


def test_java_library_raise_site_splits_what_version_1_merged(
    sample_record_by_bug: dict[str, Any],
) -> None:
    error = sample_record_by_bug["java-iioexception-unsupported-image-type"]["error"]
    other = _jpeg_sof(error)
    assert _v1(other) == _v1(error)
    assert _fp(other) != _fp(error)


def test_java_raise_site_survives_module_prefixes_and_line_shifts(
    sample_record_by_bug: dict[str, Any],
) -> None:
    error = _jpeg_sof(sample_record_by_bug["java-iioexception-unsupported-image-type"]["error"])
    modern = re.sub(r"\tat (java|javax|sun|com\.sun)\.", r"\tat java.desktop/\1.", error)
    modern = modern.replace("\tat algorithmia.", "\tat app//algorithmia.")
    assert "java.desktop/com.sun.imageio.plugins.jpeg.JPEGImageReader.readImageHeader" in modern
    assert _fp(modern) == _fp(error)
    assert _fp(_shift_line_numbers(error, 11)) == _fp(error)


def test_java_out_of_memory_wherever_the_heap_ran_out_is_one_group(
    sample_record_by_bug: dict[str, Any],
) -> None:
    error = sample_record_by_bug["java-oom-heap-decoding-jpeg"]["error"]
    elsewhere = error.replace(
        "\tat java.awt.image.DataBufferByte.<init>(DataBufferByte.java:92)\n", ""
    )
    assert elsewhere != error
    assert _fp(elsewhere) == _fp(error)


# Node: image-size refusing a buffer in two places, from the same own call ---------------------

_NODE_CALLERS = """    at measure (/opt/algorithm/src/geometry.js:12:18)
    at Object.apply (/opt/algorithm/src/image_tagger.js:44:17)
    at start_call (/opt/algorithm/bin/pipe.js:11:19)
    at Interface.<anonymous> (/opt/algorithm/bin/pipe.js:89:9)
    at Interface.emit (node:events:519:28)
    at [_onLine] [as _onLine] (node:internal/readline/interface:416:12)"""
_IMAGE_SIZE = "/opt/algorithm/node_modules/image-size/dist"

NODE_UNKNOWN_TYPE = f"""error:
TypeError: unsupported file type: undefined (file: undefined)
stacktrace:
Some(TypeError: unsupported file type: undefined (file: undefined)
    at lookup ({_IMAGE_SIZE}/index.js:50:11)
    at imageSize ({_IMAGE_SIZE}/index.js:108:16)
{_NODE_CALLERS})"""
NODE_CORRUPT_JPEG = f"""error:
TypeError: Invalid JPG, no size found
stacktrace:
Some(TypeError: Invalid JPG, no size found
    at Object.calculate ({_IMAGE_SIZE}/types/jpg.js:117:15)
    at lookup ({_IMAGE_SIZE}/index.js:47:50)
    at imageSize ({_IMAGE_SIZE}/index.js:108:16)
{_NODE_CALLERS})"""


def test_node_library_raise_site_splits_what_version_1_merged() -> None:
    assert _v1(NODE_UNKNOWN_TYPE) == _v1(NODE_CORRUPT_JPEG)
    assert _fp(NODE_UNKNOWN_TYPE) != _fp(NODE_CORRUPT_JPEG)
    assert _fp(_shift_line_numbers(NODE_CORRUPT_JPEG, 4)) == _fp(NODE_CORRUPT_JPEG)


_PATH_MESSAGE = (
    'TypeError [ERR_INVALID_ARG_TYPE]: The "path" argument must be of type string. '
    "Received undefined"
)
NODE_20_CORE = f"""error:
{_PATH_MESSAGE}
stacktrace:
Some({_PATH_MESSAGE}
    at new NodeError (node:internal/errors:405:5)
    at validateString (node:internal/validators:162:11)
    at Object.join (node:path:1171:7)
    at cachePath (/opt/algorithm/src/cache.js:8:15)
    at Object.apply (/opt/algorithm/src/image_tagger.js:38:20)
    at start_call (/opt/algorithm/bin/pipe.js:11:19)
    at Interface.<anonymous> (/opt/algorithm/bin/pipe.js:89:9)
    at Interface.emit (node:events:519:28))"""
NODE_14_CORE = f"""error:
{_PATH_MESSAGE}
stacktrace:
Some({_PATH_MESSAGE}
    at validateString (internal/validators.js:124:11)
    at Object.join (path.js:1039:7)
    at cachePath (/opt/algorithm/src/cache.js:8:15)
    at Object.apply (/opt/algorithm/src/image_tagger.js:38:20)
    at start_call (/opt/algorithm/bin/pipe.js:11:19)
    at Interface.<anonymous> (/opt/algorithm/bin/pipe.js:89:9)
    at Interface.emit (events.js:315:20))"""


def test_node_core_frames_of_other_node_versions_keep_the_group() -> None:
    assert _fp(NODE_20_CORE) == _fp(NODE_14_CORE)


def test_node_stack_overflow_wherever_it_struck_is_one_group() -> None:
    def overflow(innermost: str) -> str:
        frames = (
            "    at fitBox (/opt/algorithm/src/geometry.js:22:29)\n"
            * 3
            + "    at Object.apply (/opt/algorithm/src/image_tagger.js:50:31)\n"
            "    at start_call (/opt/algorithm/bin/pipe.js:11:19)"
        )
        return (
            "error:\nRangeError: Maximum call stack size exceeded\nstacktrace:\n"
            f"Some(RangeError: Maximum call stack size exceeded\n{innermost}{frames})"
        )

    in_lodash = overflow(
        "    at baseClone (/opt/algorithm/node_modules/lodash/lodash.js:2653:20)\n"
    )
    assert _fp(overflow("")) == _fp(in_lodash)
