"""Reading one error string: message, stack trace, exception chain and frames of every runtime.

Pure functions over text. Frames are kept innermost first whatever order the runtime prints
them in, and each frame is marked as the platform's, a library's or the algorithm's own.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

DETAIL_LINES = 8
"""Lines of a message after its headline that a reply or the terminal shows: enough for the
cause, few enough that the algorithm's own frame stays near the top."""

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


class Frame(NamedTuple):
    """One stack frame (a tuple: cheap to build, and traces have many)."""

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
    """One error string read: its message, trace, exception chain and the headline of it all."""

    message: str
    trace: str | None
    runtime: Runtime
    chain: tuple[RaisedException, ...]
    """In the order printed: Python's earliest cause first, Java's outermost wrapper first."""
    headline: str
    stage: str | None = None
    """R's legacy runner sends a stage name (`parsing`, `algorithm`, …) instead of a trace."""
    headline_index: int = -1
    """Where in `chain` the headline's exception is: Python's last, Java's first one that is
    not the runner's wrapper, the only one of other runtimes."""

    @property
    def headline_exception(self) -> RaisedException | None:
        """The exception the headline and `details` come from (None when the chain is empty)."""
        return self.chain[self.headline_index] if self.chain else None

    @property
    def details(self) -> str:
        """The rest of the headline's message: its lines after the headline's, verbatim (tabs
        and indents kept), without blank lines around them; "" for a one-line message.

        Often the real cause (`failed with error:` then what failed, R's `Error in f(x) :`
        then the reason, Rust's `caused by:` lines). Whole: renderers cut to their room."""
        exc = self.headline_exception
        return _details(exc.message if exc is not None and exc.line() else self.message)

    @property
    def innermost_own_frame(self) -> Frame | None:
        """The algorithm's own frame closest to where the error was raised: the line to read
        first. None when no frame is the algorithm's own.

        The exceptions are searched from the last printed to the first. In Python that is the
        final exception (the headline's) first, then its causes, nearest first: the final
        exception is where the algorithm gave up, by a `raise … from` of its own or a new
        failure while handling. In Java it is the deepest `Caused by:` first, then outward to
        the headline's exception: Java prints of a cause only the frames it does not share with
        its wrapper, so a cause's own frame is the call that failed, while the wrapper's is
        only the `catch` that rethrew it, maybe far up in `apply`."""
        for exc in reversed(self.chain):
            for frame in exc.frames:
                if frame.origin is Origin.OWN:
                    return frame
        return None

    @property
    def frames(self) -> tuple[Frame, ...]:
        return tuple(frame for exc in self.chain for frame in exc.frames)

    @property
    def own_frames(self) -> tuple[Frame, ...]:
        return tuple(frame for frame in self.frames if frame.origin is Origin.OWN)

    def own_locations(self, limit: int) -> list[str]:
        """Where the algorithm's own code is in the trace, as readers see it: the innermost
        own frame first, then the others as printed, each place once, at most `limit`."""
        innermost = self.innermost_own_frame
        if innermost is None or limit <= 0:
            return []
        found = {innermost.location(): None}
        for exc in self.chain:
            for frame in exc.frames:
                if frame.origin is Origin.OWN:
                    if len(found) == limit:
                        return list(found)
                    found[frame.location()] = None
        return list(found)

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
    # However long the message printed above the frames: a JVM frame anywhere makes it Java
    # (Node prints `fn (location)`, never `fn(location)`), else an indented `at …` is Node.
    lined = "\n" + trace  # the line-start patterns below begin with a literal newline
    if _JAVA_FRAME_LINE.search(lined):
        return _parse_java(message, trace)
    if _NODE_FRAME_START.search(lined):
        return _parse_node(message, trace)
    if _RUBY_FRAME.match(trace[:2000].lstrip()):
        return _parse_ruby(message, trace, error_type)
    stage = trace.strip()
    if stage in _R_STAGES or stage.startswith("pipe.r:"):
        chain = (RaisedException("", message),)
        return ParsedError(message, trace, Runtime.R, chain, _first_line(message), stage=stage)
    chain = (RaisedException("", message),)
    return ParsedError(message, trace, Runtime.UNKNOWN, chain, _first_line(message) or stage)


def clear_caches() -> None:
    """Forget the frames built so far (benchmarks measure a cold response with this)."""
    for cached in (_python_frame, _python_origin, _java_frame, _java_origin, _node_frame,
                   _ruby_frame):  # fmt: skip
        cached.cache_clear()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _details(text: str) -> str:
    """The lines after `_first_line`'s, without the blank lines before and after them."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines)) + 1
    end = len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


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

_PY_FRAME = re.compile(r'\n[ \t]*File "([^"\n]*)", line (\d+)(?:, in ([^\n]*))?')
"""Starts with a literal newline, which the engine scans for quickly; frames start a line."""
_PY_EXCEPTION_START = re.compile(r"\n(?![ \t\n]|Traceback \(most recent call last\))")
"""The newline before the first unindented line; a literal first, which the engine scans fast."""
_PY_CHAIN_SEPARATORS = (
    "\nDuring handling of the above exception, another exception occurred:\n",
    "\nThe above exception was the direct cause of the following exception:\n",
)
_PY_PLATFORM_FILES = frozenset({"algorithmia-pipe", "pipe.py", "ADK.py"})
_PY_STDLIB = re.compile(r"/lib/python\d(?:\.\d+)?/|^<frozen ")


@functools.lru_cache(maxsize=8192)
def _python_frame(path: str, line: str, function: str | None) -> Frame:
    """Frames repeat across the records of a response, so each is built once."""
    return Frame(path, function or "<module>", int(line), _python_origin(path))


@functools.lru_cache(maxsize=4096)
def _python_origin(path: str) -> Origin:
    if path.rsplit("/", 1)[-1] in _PY_PLATFORM_FILES or "/adk/" in path:
        return Origin.PLATFORM
    if "site-packages/" in path or "dist-packages/" in path or _PY_STDLIB.search(path):
        return Origin.LIBRARY
    return Origin.OWN


def _parse_python(message: str, trace: str) -> ParsedError:
    chain: list[RaisedException] = []
    for section in _split_python_chain(trace):
        # The exception starts at the first unindented line after the header; a traceback
        # quoted inside its message (subprocess output, multiprocessing) is not this one's.
        header = section.find("Traceback (most recent call last):")
        exception = _PY_EXCEPTION_START.search(section, max(header, 0))
        limit = exception.start() + 1 if exception is not None else len(section)
        found = _PY_FRAME.findall(section, 0, limit)
        frames = [_python_frame(*frame) for frame in found]
        end = 0
        if found:
            path, line, _ = found[-1]
            end = section.find("\n", section.rfind(f'File "{path}", line {line}', 0, limit))
            end = len(section) if end == -1 else end
        # After the last frame come its source and caret lines (indented), then the exception.
        rest = section[end:].split("\n")
        start = 0
        while start < len(rest) and (
            rest[start].startswith("  ")
            or not rest[start].strip()
            or rest[start].startswith("Traceback (most recent call last)")
        ):
            start += 1
        if not frames and start == len(rest):
            continue
        exc_type, exc_message = _split_exception("\n".join(rest[start:]).strip("\n"))
        chain.append(RaisedException(exc_type, exc_message, tuple(reversed(frames))))
    last = chain[-1] if chain else RaisedException("", message)
    headline = last.line() or _first_line(message)
    return ParsedError(message, trace, Runtime.PYTHON, tuple(chain), headline)


def _split_python_chain(trace: str) -> list[str]:
    sections = [trace]
    if "above exception" in trace:
        for separator in _PY_CHAIN_SEPARATORS:
            sections = [piece for section in sections for piece in section.split(separator)]
    return sections


# Java -----------------------------------------------------------------------------------------

_JAVA_FRAME = re.compile(r"\s+at (?P<func>[^\s(]+)\((?P<loc>[^)]*)\)\s*$")
_JAVA_FRAME_LINE = re.compile(r"\n(?:\t| {1,4})at ([^\s(]+)\(([^)\n]*)\)[ \t]*$", re.M)
"""A frame of the trace itself; suppressed exceptions' frames are indented twice. Searched in
the text after a newline: a literal first, which the engine scans for fast, instead of `^`."""
_JAVA_SUPPRESSED = re.compile(r"^[ \t]+Suppressed: ", re.M)
_JAVA_PLATFORM = ("com.algorithmia.", "sun.reflect.", "jdk.internal.reflect.", "java.lang.reflect.")
_JAVA_LIBRARY = (
    "java.", "javax.", "sun.", "jdk.", "com.sun.", "scala.", "kotlin.", "org.apache.",
    "org.bytedeco.", "com.google.", "com.fasterxml.", "org.slf4j.", "io.netty.",
    "com.twelvemonkeys.", "org.springframework.", "okhttp3.", "org.json.",
)  # fmt: skip
_OWN_JAVA_PACKAGE = "algorithmia."
_OWN_JAVA_FRAME = re.compile(r"at (?:[^\s/(]*+/+)?algorithmia\.")
"""Algorithmia's Java templates put an algorithm's code in the package `algorithmia.<name>`.
Possessive (`*+`): a loader's or module's name ends only at its `/`, so giving characters back
could never match and only cost time at each of the many frames of other packages."""


def _parse_java(message: str, trace: str) -> ParsedError:
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    for section in trace.split("\nCaused by: "):
        suppressed = _JAVA_SUPPRESSED.search(section) if "Suppressed: " in section else None
        if suppressed is not None:  # printed after the section's frames; not part of the chain
            section = section[: suppressed.start()]
        first_at = section.find("\n\tat ")  # how the JVM prints frames; else any indent
        if first_at == -1:
            first = _JAVA_FRAME_LINE.search("\n" + section)
            first_at = first.start() if first is not None else len(section)  # the same index
        header = section[:first_at]
        sections.append((header.strip("\n"), _JAVA_FRAME_LINE.findall("\n" + section)))
    own_package_seen = _OWN_JAVA_FRAME.search(trace) is not None
    chain = []
    for header, raw_frames in sections:
        exc_type, exc_message = _split_exception(header)
        frames = tuple([_java_frame(func, loc, own_package_seen) for func, loc in raw_frames])
        chain.append(RaisedException(exc_type, exc_message, frames))
    # The runner rethrows the algorithm's exception in its own wrapper; the headline skips it.
    thrown = [i for i, exc in enumerate(chain) if not exc.type.startswith("com.algorithmia.")]
    index = thrown[0] if thrown else 0
    headline = chain[index].line() if chain else _first_line(message)
    return ParsedError(message, trace, Runtime.JAVA, tuple(chain), headline, headline_index=index)


@functools.lru_cache(maxsize=8192)
def _java_frame(func: str, loc: str, own_package_seen: bool) -> Frame:
    # Java 9+ prefixes the class loader and module: `app//x.Y.m`, `java.base/java.lang.Z.m`.
    func = func.rpartition("/")[2]
    file, _, line = loc.partition(":")
    return Frame(
        file, func, int(line) if line.isdecimal() else None, _java_origin(func, own_package_seen)
    )


@functools.lru_cache(maxsize=4096)
def _java_origin(func: str, own_package_seen: bool) -> Origin:
    if func.startswith(_JAVA_PLATFORM):
        return Origin.PLATFORM
    if func.startswith(_OWN_JAVA_PACKAGE):
        return Origin.OWN
    if own_package_seen or func.startswith(_JAVA_LIBRARY):
        return Origin.LIBRARY
    return Origin.OWN


# Node.js --------------------------------------------------------------------------------------

_NODE_FRAME_START = re.compile(r"\n[ \t]+at \S")
"""Searched in the text after a newline, as `_JAVA_FRAME_LINE`."""


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


def _parse_node(message: str, trace: str) -> ParsedError:
    header: list[str] = []
    frames: list[Frame] = []
    for line in trace.split("\n"):
        text = line.strip()
        if not text.startswith("at ") or not line[:1].isspace():
            if not frames:
                header.append(line)
            continue
        frames.append(_node_frame(text[3:]))
    exc_type, exc_message = _split_exception("\n".join(header).strip())
    exc = RaisedException(exc_type, exc_message, tuple(frames))
    headline = exc.line() or _first_line(message)
    return ParsedError(message, trace, Runtime.NODE, (exc,), headline)


@functools.lru_cache(maxsize=8192)
def _node_frame(text: str) -> Frame:
    """`fn (path:line:col)`, `path:line:col`, or `fn (<anonymous>)`."""
    function, location = "<anonymous>", text
    if text.endswith(")") and " (" in text:
        function, _, location = text[:-1].rpartition(" (")
    path, line = location, None
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdecimal() and parts[2].isdecimal():
        path, line = parts[0], int(parts[1])
    elif len(parts) >= 2 and parts[-1].isdecimal():
        path, line = location.rsplit(":", 1)[0], int(parts[-1])
    return Frame(path, function, line, _node_origin(path))


# Ruby -----------------------------------------------------------------------------------------

_RUBY_FRAME = re.compile(r"^[ \t]*([^\s:][^:\n]*):(\d+):in [`']([^\n]*)'[ \t]*$", re.M)
_RUBY_FRAME_LINE = re.compile(r"\n[ \t]*([^\s:][^:\n]*):(\d+):in [`']([^\n]*)'[ \t]*$", re.M)
"""`_RUBY_FRAME` found in the text after a newline, as `_JAVA_FRAME_LINE`."""


def _ruby_origin(path: str) -> Origin:
    if path.endswith("bin/pipe.rb"):
        return Origin.PLATFORM
    if "/gems/" in path or "/lib/ruby/" in path or path.startswith("<internal:"):
        return Origin.LIBRARY
    return Origin.OWN


def _parse_ruby(message: str, trace: str, error_type: str) -> ParsedError:
    frames = tuple(_ruby_frame(*match) for match in _RUBY_FRAME_LINE.findall("\n" + trace))
    exc_type = error_type if _looks_like_class(error_type) else ""
    exc = RaisedException(exc_type, message, frames)
    return ParsedError(message, trace, Runtime.RUBY, (exc,), _first_line(message) or exc_type)


@functools.lru_cache(maxsize=8192)
def _ruby_frame(path: str, line: str, function: str) -> Frame:
    return Frame(path, function, int(line), _ruby_origin(path))
