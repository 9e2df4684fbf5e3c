"""The logs of a running bot as an operator's collector reads them (`LOG_FORMAT=json`): one JSON
object per line, a line for each command, interaction and digest run with its context, and no
token, key, signing secret, request body, algorithm input or trace, even at DEBUG; at INFO,
no line per scheduler tick."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.testing.harness import process_env
from bot.testing.loopback import free_port
from bot.testing.sample_cluster import SampleCluster, fresh_record, sample_records
from bot.testing.signing import block_actions_body, sign, slash_command_body
from bot.testing.slack_stand_in import SlackStandIn

TOKEN = "xoxb-logs-e2e-token-5b1d90"
SIGNING_SECRET = "logs-e2e-signing-secret-93ac"
API_KEY = "simLOGSE2EKEY7f2a000000000"
FORGED_MARKER = "FORGED-BODY-MARKER-1e4b"
MALFORMED_MARKER = "MALFORMED-BODY-MARKER-8d2c"
FRESH_BUGS = ("py-pil-rgba-jpeg-save", "java-unsatisfiedlink-opencv")
GENERIC_TRACE_LINES = {
    "Traceback (most recent call last):",
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
}


def _env(
    cluster: SampleCluster, slack: SlackStandIn, tmp_path: Path, **more: str
) -> dict[str, str]:
    # The test's own distinctive secrets, so it can look for them in the logs.
    secrets = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "ALGORITHMIA_API_KEY": API_KEY}  # fmt: skip
    return process_env(cluster, slack, f"sqlite:///{tmp_path / 'bot.db'}", **secrets, **more)


class Served:
    """`python -m bot serve` in a subprocess, its stderr read line by line as it comes."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process, self.url = process, f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.lines.append(line.decode())

    async def until(self, holds: Callable[[list[str]], bool], seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not holds(self.lines):
            assert time.monotonic() < deadline, "".join(self.lines[-20:])
            assert self.process.returncode is None, "".join(self.lines[-20:])
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        code = await asyncio.wait_for(self.process.wait(), timeout=30)
        await self._reading
        return code


async def _serve(env: dict[str, str], cwd: Path) -> Served:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
        env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    served = Served(process, port)
    await served.until(lambda lines: any("serving on" in line for line in lines))
    return served


def _parsed(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def _lines_with(lines: list[str], **fields: object) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and all(record.get(k) == v for k, v in fields.items()):
                found.append(record)
    return found


def _strings(value: object) -> Iterator[str]:
    """Every text in a parsed log line (keys and values, however nested), as written."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _private_parts(records: list[dict[str, Any]]) -> set[str]:
    """What the cluster served that must never be logged: each input and its values, and each
    line of each stack trace."""
    parts: set[str] = set()
    for record in records:
        given = str(record.get("input") or "")
        parts.add(given)
        with contextlib.suppress(ValueError):
            parts.update(s for s in _strings(json.loads(given)) if len(s) >= 12)
        _, _, trace = str(record["error"]).partition("stacktrace:")
        for line in trace.splitlines():
            line = line.strip().removeprefix("Some(")
            # The lines any Python traceback has, and the `^^^` under a call, are not theirs.
            if len(line) >= 20 and line not in GENERIC_TRACE_LINES and line.strip("^~ "):
                parts.add(line)
    return {part for part in parts if len(part) >= 12}


def _interaction(payload: object) -> str:
    return urlencode({"payload": json.dumps(payload)})


async def test_json_logs_say_what_happened_with_its_context_and_nothing_private(
    tmp_path: Path,
) -> None:
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
        httpx.AsyncClient(timeout=10) as http,
    ):
        cluster.load_sample()
        env = _env(
            cluster, slack, tmp_path,
            LOG_FORMAT="json", LOG_LEVEL="DEBUG", DIGEST_TICK_SECONDS="1", SHOW_INPUT="true",
        )  # fmt: skip
        served = await _serve(env, tmp_path)
        events = f"{served.url}/slack/events"
        try:

            async def post(body: str, secret: str = SIGNING_SECRET) -> int:
                response = await http.post(events, content=body, headers=sign(secret, body))
                return response.status_code

            for text, kind in (
                ("acme/image_tagger type:RecursionError", "query"),
                ("subscribe acme/image_tagger", "subscribe"),
                ("list", "list"),
            ):
                body = slash_command_body(text, response_url=slack.response_url())
                assert await post(body) == 200
                await served.until(
                    lambda lines, kind=kind: bool(
                        _lines_with(lines, event="command handled", command=kind)
                    )
                )
            forged = slash_command_body(FORGED_MARKER, response_url=slack.response_url())
            assert await post(forged, secret="not-the-signing-secret") == 401
            malformed = [
                {"type": "block_actions", "actions": [], "user": {"id": MALFORMED_MARKER}},
                {"type": "block_actions", "actions": [{"action_id": {MALFORMED_MARKER: 1}}]},
            ]
            assert await post(_interaction(malformed[0])) == 400
            await post(_interaction(malformed[1]))  # a handler fails on it: logged, no body

            now_ms = int(time.time() * 1000)
            fresh = [fresh_record(bug, now_ms - i) for i, bug in enumerate(FRESH_BUGS)]
            cluster.append_records("acme", "image_tagger", fresh)
            digest = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "digest", "--once", "--all", env=env, cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(digest.communicate(), timeout=60)
            assert digest.returncode == 0, err.decode()
            assert out.decode().startswith("digest: 1 ran, 0 failed, ")

            alert = next(
                m for m in reversed(slack.top_level("C_GENERAL"))
                if any(b["type"] == "actions" for b in m.blocks)
            )  # fmt: skip
            click = block_actions_body(
                channel_id=alert.channel, message_ts=alert.ts, blocks=alert.blocks,
                action_id="group_resolve", user_id="U_ALICE",
                response_url=slack.response_url("click"),
            )  # fmt: skip
            assert await post(click) == 200
            await served.until(lambda lines: bool(_lines_with(lines, event="interaction handled")))
        finally:
            code = await served.stop()
        assert code == 0, "".join(served.lines[-20:])

    serve_lines, digest_lines = served.lines, err.decode().splitlines(keepends=True)
    every = [*serve_lines, *digest_lines]
    # Every line is one JSON object with the four fields, the time in UTC.
    for record in _parsed(every):
        assert isinstance(record, dict)
        assert {"ts", "level", "logger", "event"} <= record.keys(), record
        assert str(record["ts"]).endswith(("Z", "+00:00")), record
    # A line per command, with the command's context, and its outcome.
    for kind in ("query", "subscribe", "list"):
        (line,) = _lines_with(serve_lines, event="command handled", command=kind)
        assert line["level"] == "info"
        assert (line["user"], line["channel"], line["outcome"]) == ("U_ALICE", "C_GENERAL", "ok")
        assert line.get("algorithm") == (None if kind == "list" else "acme/image_tagger")
    # Lines logged while a command ran carry its context (the cluster's request here).
    assert _lines_with(serve_lines, logger="httpx", command="query", user="U_ALICE")
    (clicked,) = _lines_with(serve_lines, event="interaction handled")
    assert (clicked["level"], clicked["action"], clicked["outcome"]) == (
        "info", "group_resolve", "ok",
    )  # fmt: skip
    assert (clicked["user"], clicked["channel"]) == ("U_ALICE", "C_GENERAL")
    # One line for the digest run: outcome, counts, duration, and its run id.
    (run,) = _lines_with(digest_lines, event="digest run", level="info")
    assert (run["outcome"], run["ran"], run["failed"]) == ("ok", 1, 0)
    assert run["posted"] >= len(FRESH_BUGS)
    assert isinstance(run["duration_s"], float)
    assert run["run"]
    # Within the run, each subscription's lines say which one it is.
    (digested,) = _lines_with(digest_lines, event="subscription digested", run=run["run"])
    assert (digested["subscription"], digested["channel"]) == (1, "C_GENERAL")
    assert (digested["algorithm"], digested["outcome"]) == ("acme/image_tagger", "ok")
    # Bolt no longer warns at start that it ignores a token.
    assert not [line for line in every if "`token`" in line], "Bolt warned about the token"
    # At DEBUG the scheduler's ticks are there (and only at DEBUG: the next test).
    assert _lines_with(serve_lines, event="digest tick", level="debug")
    # Nothing secret or private, at any level.
    served_records = [*sample_records(now_ms), *fresh]
    private = _private_parts(served_records)
    assert len(private) > 100  # inputs and trace lines of the records the cluster served
    for line, record in zip(every, _parsed(every), strict=True):
        for secret in (TOKEN, SIGNING_SECRET, API_KEY, FORGED_MARKER, MALFORMED_MARKER):
            assert secret not in line
        text = "\n".join(_strings(record))
        leaked = [part for part in private if part in text]
        assert not leaked, (leaked[:3], record)


async def test_at_info_the_scheduler_s_ticks_leave_no_line(tmp_path: Path) -> None:
    async with SampleCluster(authorization=f"Simple {API_KEY}") as cluster, SlackStandIn() as slack:
        served = await _serve(_env(cluster, slack, tmp_path, DIGEST_TICK_SECONDS="1"), tmp_path)
        await asyncio.sleep(3.5)  # three ticks or more
        assert await served.stop() == 0
    logged = "".join(served.lines)
    assert "serving on" in logged
    for tick in ("Running job", "executed successfully", "Added job", "Scheduler started",
                 "digest tick", "digest run"):  # fmt: skip
        assert tick not in logged
    # `text`: one line per record, the time first.
    assert all(line[:4].isdigit() and "Z [" in line for line in served.lines), logged
