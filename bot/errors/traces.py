"""Reading one error string: message, stack trace, exception chain and frames of every runtime.

Pure functions over text. Frames are kept innermost first whatever order the runtime prints
them in, and each frame is marked as the platform's, a library's or the algorithm's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_ERROR_PREFIX = "error:\n"
_TRACE_MARKER = "\nstacktrace:\n"


class Runtime(StrEnum):
    PYTHON = "python"
    JAVA = "java"
    NODE = "node"
    RUBY = "ruby"
    R = "r"
    NONE = "none"
    """No stack trace was sent (Rust, `SystemExit`, Node rejections with a non-Error value)."""
    UNKNOWN = "unknown"


class Origin(StrEnum):
    OWN = "own"
    LIBRARY = "library"
    PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class Frame:
    file: str
    function: str
    line: int | None
    origin: Origin

    def location(self) -> str:
        """`file:line in function`, short enough for a Slack line."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where} in {self.function}"


@dataclass(frozen=True, slots=True)
class RaisedException:
    """One exception of a chain, with the frames printed for it (innermost first)."""

    type: str
    message: str
    frames: tuple[Frame, ...] = ()

    def line(self) -> str:
        """The exception line as the runtime prints it: `Type: first line of message`."""
        first = _first_line(self.message)
        if not self.type:
            return first
        return f"{self.type}: {first}" if first else self.type


@dataclass(frozen=True, slots=True)
class ParsedError:
    message: str
    trace: str | None
    runtime: Runtime
    chain: tuple[RaisedException, ...]
    """In the order printed: Python's earliest cause first, Java's outermost wrapper first."""
    headline: str
    stage: str | None = None
    """R's legacy runner sends a stage name (`parsing`, `algorithm`, …) instead of a trace."""

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(frame for exc in self.chain for frame in exc.frames)

    @property
    def own_frames(self) -> tuple[Frame, ...]:
        return tuple(frame for frame in self.frames if frame.origin is Origin.OWN)

    @property
    def exception_types(self) -> tuple[str, ...]:
        return tuple(exc.type for exc in self.chain if exc.type)


def split_error(error: str) -> tuple[str, str | None]:
    """Split the API's `error` string into the message and the trace (None when absent).

    The server writes `"error:\\n" + message + "\\nstacktrace:\\n" + Option`, where the option
    is Scala's `Some(trace)` or `None`.
    """
    text = error[len(_ERROR_PREFIX) :] if error.startswith(_ERROR_PREFIX) else error
    message, marker, option = text.partition(_TRACE_MARKER)
    if not marker:
        if text.endswith("\nstacktrace:\nNone") or text.endswith("\nstacktrace:"):
            return text.rsplit("\nstacktrace:", 1)[0], None
        return text, None
    option = option.strip()
    if option in ("None", ""):
        return message, None
    if option.startswith("Some(") and option.endswith(")"):
        option = option[5:-1]
    if option.strip() in ("", "[None]", "None", "NoneType: None"):
        return message, None
    return message, option


def parse_error(error: str, error_type: str = "") -> ParsedError:
    """Read an `error` string of any runtime. Never raises: unknown text becomes UNKNOWN."""
    message, trace = split_error(error)
    if trace is None:
        chain = (RaisedException(error_type if _looks_like_class(error_type) else "", message),)
        return ParsedError(message, None, Runtime.NONE, chain, _first_line(message) or error_type)
    if "Traceback (most recent call last):" in trace:
        return _parse_python(message, trace)
    lines = trace.splitlines()
    if any(_JAVA_FRAME.match(line) for line in lines[:8]):
        return _parse_java(message, trace, lines)
    if any(_NODE_FRAME.match(line) for line in lines[:8]):
        return _parse_node(message, trace, lines)
    if any(_RUBY_FRAME.match(line) for line in lines[:3]):
        return _parse_ruby(message, trace, lines, error_type)
    stage = trace.strip()
    if stage in _R_STAGES or stage.startswith("pipe.r:"):
        chain = (RaisedException("", message),)
        return ParsedError(message, trace, Runtime.R, chain, _first_line(message), stage=stage)
    chain = (RaisedException("", message),)
    return ParsedError(message, trace, Runtime.UNKNOWN, chain, _first_line(message) or stage)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


_R_STAGES = frozenset({"parsing", "algorithm"})
_CLASS_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*")
_EXCEPTION_LINE = re.compile(r"(?P<type>[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*)(?::\s?|$)")


def _looks_like_class(text: str) -> bool:
    return bool(_CLASS_NAME.fullmatch(text))


def _split_exception(text: str) -> tuple[str, str]:
    """`Type: message` → (type, message); text that does not start with a type → ("", text)."""
    match = _EXCEPTION_LINE.match(text)
    if match is None:
        return "", text
    return match.group("type"), text[match.end() :]


# Python ---------------------------------------------------------------------------------------

_PY_FRAME = re.compile(r'\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.*))?$')
_PY_CHAIN_SEPARATORS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_PY_PLATFORM_FILES = frozenset({"algorithmia-pipe", "pipe.py", "ADK.py"})
_PY_STDLIB = re.compile(r"/lib/python\d(?:\.\d+)?/|^<frozen ")


def _python_origin(path: str) -> Origin:
    if path.rsplit("/", 1)[-1] in _PY_PLATFORM_FILES or "/adk/" in path:
        return Origin.PLATFORM
    if "site-packages/" in path or "dist-packages/" in path or _PY_STDLIB.search(path):
        return Origin.LIBRARY
    return Origin.OWN


def _parse_python(message: str, trace: str) -> ParsedError:
    chain: list[RaisedException] = []
    for section in _split_python_sections(trace):
        frames: list[Frame] = []
        exception_lines: list[str] = []
        for line in section:
            if exception_lines:
                exception_lines.append(line)
                continue
            frame = _PY_FRAME.match(line)
            if frame is not None:
                path = frame.group("file")
                frames.append(
                    Frame(
                        path,
                        frame.group("func") or "<module>",
                        int(frame.group("line")),
                        _python_origin(path),
                    )
                )
            elif (
                line.startswith("  ")
                or not line.strip()
                or line.startswith("Traceback (most recent call last)")
            ):
                continue  # source lines, caret lines, "[Previous line repeated …]"
            else:
                exception_lines.append(line)
        text = "\n".join(exception_lines).strip("\n")
        exc_type, exc_message = _split_exception(text)
        frames.reverse()
        chain.append(RaisedException(exc_type, exc_message, tuple(frames)))
    last = chain[-1] if chain else RaisedException("", message)
    headline = last.line() or _first_line(message)
    return ParsedError(message, trace, Runtime.PYTHON, tuple(chain), headline)


def _split_python_sections(trace: str) -> list[list[str]]:
    sections: list[list[str]] = [[]]
    for line in trace.splitlines():
        if line.strip() in _PY_CHAIN_SEPARATORS:
            sections.append([])
        else:
            sections[-1].append(line)
    return [section for section in sections if any(line.strip() for line in section)]


# Java -----------------------------------------------------------------------------------------

_JAVA_FRAME = re.compile(r"\s+at (?P<func>[^\s(]+)\((?P<loc>[^)]*)\)\s*$")
_JAVA_MORE = re.compile(r"\s+\.\.\. \d+ (?:more|common frames omitted)\s*$")
_JAVA_PLATFORM = ("com.algorithmia.", "sun.reflect.", "jdk.internal.reflect.", "java.lang.reflect.")
_JAVA_LIBRARY = (
    "java.", "javax.", "sun.", "jdk.", "com.sun.", "scala.", "kotlin.", "org.apache.",
    "org.bytedeco.", "com.google.", "com.fasterxml.", "org.slf4j.", "io.netty.",
    "com.twelvemonkeys.", "org.springframework.", "okhttp3.", "org.json.",
)  # fmt: skip
_OWN_JAVA_PACKAGE = "algorithmia."
"""Algorithmia's Java templates put an algorithm's code in the package `algorithmia.<name>`."""


def _parse_java(message: str, trace: str, lines: list[str]) -> ParsedError:
    sections: list[tuple[list[str], list[tuple[str, str]]]] = []
    in_suppressed = False
    for line in lines:
        frame = _JAVA_FRAME.match(line)
        if frame is not None:
            if not in_suppressed and sections:
                sections[-1][1].append((frame.group("func"), frame.group("loc")))
            continue
        if _JAVA_MORE.match(line):
            continue
        stripped = line.strip()
        if stripped.startswith("Suppressed:"):
            in_suppressed = True
            continue
        if line.startswith("Caused by: ") or not sections:
            in_suppressed = False
            header = line[len("Caused by: ") :] if line.startswith("Caused by: ") else line
            sections.append(([header], []))
        elif not in_suppressed and not sections[-1][1]:
            sections[-1][0].append(line)  # a multi-line message before the first frame
    own_package_seen = any(
        func.startswith(_OWN_JAVA_PACKAGE) for _, frames in sections for func, _ in frames
    )
    chain = []
    for header_lines, raw_frames in sections:
        exc_type, exc_message = _split_exception("\n".join(header_lines))
        frames = tuple(_java_frame(func, loc, own_package_seen) for func, loc in raw_frames)
        chain.append(RaisedException(exc_type, exc_message, frames))
    thrown = [exc for exc in chain if not exc.type.startswith("com.algorithmia.")]
    headline = (thrown[0] if thrown else chain[0]).line() if chain else _first_line(message)
    return ParsedError(message, trace, Runtime.JAVA, tuple(chain), headline)


def _java_frame(func: str, loc: str, own_package_seen: bool) -> Frame:
    file, _, line = loc.partition(":")
    origin = Origin.OWN
    if func.startswith(_JAVA_PLATFORM):
        origin = Origin.PLATFORM
    elif func.startswith(_OWN_JAVA_PACKAGE):
        origin = Origin.OWN
    elif own_package_seen or func.startswith(_JAVA_LIBRARY):
        origin = Origin.LIBRARY
    return Frame(file, func, int(line) if line.isdigit() else None, origin)


# Node.js --------------------------------------------------------------------------------------

_NODE_FRAME = re.compile(r"\s+at (?:(?P<func>.+?) \((?P<loc>.+)\)|(?P<bare>\S+))\s*$")
_NODE_LOCATION = re.compile(r"(?P<file>.+?)(?::(?P<line>\d+))?(?::\d+)?$")


def _node_origin(path: str) -> Origin:
    if path.endswith("bin/pipe.js"):
        return Origin.PLATFORM
    if (
        "node_modules/" in path
        or path.startswith(("node:", "internal/"))
        or "/" not in path
        or path == "<anonymous>"
    ):
        return Origin.LIBRARY
    return Origin.OWN


def _parse_node(message: str, trace: str, lines: list[str]) -> ParsedError:
    header: list[str] = []
    frames: list[Frame] = []
    for line in lines:
        match = _NODE_FRAME.match(line)
        if match is None:
            if not frames:
                header.append(line)
            continue
        location = match.group("loc") or match.group("bare")
        loc = _NODE_LOCATION.match(location)
        path = loc.group("file") if loc else location
        line_no = loc.group("line") if loc else None
        func = match.group("func") or "<anonymous>"
        frames.append(Frame(path, func, int(line_no) if line_no else None, _node_origin(path)))
    exc_type, exc_message = _split_exception("\n".join(header).strip())
    exc = RaisedException(exc_type, exc_message, tuple(frames))
    headline = exc.line() or _first_line(message)
    return ParsedError(message, trace, Runtime.NODE, (exc,), headline)


# Ruby -----------------------------------------------------------------------------------------

_RUBY_FRAME = re.compile(r"(?P<file>[^\s:][^:]*):(?P<line>\d+):in [`'](?P<func>.*)'\s*$")


def _ruby_origin(path: str) -> Origin:
    if path.endswith("bin/pipe.rb"):
        return Origin.PLATFORM
    if "/gems/" in path or "/lib/ruby/" in path or path.startswith("<internal:"):
        return Origin.LIBRARY
    return Origin.OWN


def _parse_ruby(message: str, trace: str, lines: list[str], error_type: str) -> ParsedError:
    frames = []
    for line in lines:
        match = _RUBY_FRAME.match(line.strip())
        if match is not None:
            path = match.group("file")
            frames.append(
                Frame(path, match.group("func"), int(match.group("line")), _ruby_origin(path))
            )
    exc_type = error_type if _looks_like_class(error_type) else ""
    exc = RaisedException(exc_type, message, tuple(frames))
    return ParsedError(message, trace, Runtime.RUBY, (exc,), _first_line(message) or exc_type)
