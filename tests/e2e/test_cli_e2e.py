"""The command line as an operator runs it: `errors`, `demo`, and start-up configuration errors."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.slack.scopes import BOT_SCOPES
from bot.testing.sample_cluster import SampleCluster
from bot.testing.slack_stand_in import SlackStandIn

KEY = "simCLITESTKEY000000000000000"


@pytest.fixture
async def cluster() -> AsyncIterator[SampleCluster]:
    async with SampleCluster(authorization=f"Simple {KEY}") as running:
        running.load_sample()
        yield running


async def run_cli(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `python -m bot ARGS` in `cwd` (no stray .env) with only `env` and PATH set."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _env(cluster: SampleCluster) -> dict[str, str]:
    return {"ALGORITHMIA_API_URL": cluster.base_url, "ALGORITHMIA_API_KEY": KEY}


async def test_errors_json_lists_groups_newest_first(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    code, out, err = await run_cli(tmp_path, _env(cluster), "errors", "acme/image_tagger", "--json")
    assert (code, err) == (0, "")
    answer = json.loads(out)
    assert answer["algorithm"] == "acme/image_tagger"
    assert answer["errors"] == 80
    groups = answer["groups"]
    assert len(groups) == 25
    assert sum(g["count"] for g in groups) == 80
    assert [g["last_seen"] for g in groups] == sorted(
        (g["last_seen"] for g in groups), reverse=True
    )
    for key in ("fingerprint", "error_type", "headline", "count", "request_ids", "versions",
                "first_seen", "last_seen"):  # fmt: skip
        assert key in groups[0]
    assert len(groups[0]["request_ids"]) == groups[0]["count"]


async def test_errors_text_with_options(cluster: SampleCluster, tmp_path: Path) -> None:
    code, out, _ = await run_cli(
        tmp_path, _env(cluster), "errors", "acme/image_tagger", "type:RecursionError"
    )
    assert code == 0
    assert out.startswith("acme/image_tagger: 3 errors in 1 group matching type:RecursionError")
    assert "your code: ./src/options.py:31 in threshold" in out


async def test_errors_with_no_matching_errors_succeeds(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    code, out, _ = await run_cli(tmp_path, _env(cluster), "errors", "acme/image_tagger", "since:1h")
    assert code == 0
    assert out.startswith("acme/image_tagger: 0 errors")


async def test_errors_lookup_failure_exits_1_with_one_line(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    code, out, err = await run_cli(tmp_path, _env(cluster), "errors", "acme/nope")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    # The cause and what to do, as Slack says them.
    assert err.startswith("error: There is no algorithm acme/nope on this cluster. Check the owner")
    code, out, err = await run_cli(tmp_path, _env(cluster), "errors", "acme/nope", "--json")
    assert (code, err) == (1, "")
    (failure,) = json.loads(out).values()
    assert failure["kind"] == "algorithm_not_found"
    assert failure["message"].startswith("There is no algorithm acme/nope on this cluster.")
    assert failure["hint"] == "Check the owner and the name (both are case-sensitive)."


async def test_errors_with_the_cluster_down_exits_1_with_one_line(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    cluster.down = True
    code, out, err = await run_cli(tmp_path, _env(cluster), "errors", "acme/image_tagger")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("error: The Algorithmia cluster could not be reached for acme/image_tag")
    assert "(cluster answered 503" in err
    assert len(cluster.requests) == 3  # retried


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("errors", "acme"), "is not an algorithm"),
        (("errors", "acme/x", "since:soon"), "is not a duration"),
        (("errors", "list"), "give an algorithm"),
        (("errors",), "the following arguments are required: target"),
        (("serve", "--port", "99999"), "'99999' is not a port: a number from 0 to 65535"),
        (("digest", "--port", "-1"), "'-1' is not a port"),
    ],
)
async def test_bad_arguments_exit_2(
    cluster: SampleCluster, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = await run_cli(tmp_path, _env(cluster), *args)
    assert code == 2
    assert message in err
    assert cluster.requests == []


_NO_KEY = "ALGORITHMIA_API_KEY: required (or set ALGORITHMIA_JWT instead)"
_NO_SECRET = (
    "SLACK_SIGNING_SECRET: required by serve over HTTP (or set SLACK_APP_TOKEN for Socket Mode)"
)


@pytest.mark.parametrize(
    ("env", "command", "problems"),
    [
        ({}, "errors", ["ALGORITHMIA_API_URL: required", _NO_KEY]),
        ({"ALGORITHMIA_API_URL": "ftp://x", "ALGORITHMIA_API_KEY": "k"}, "errors",
         ["ALGORITHMIA_API_URL: must be an http:// or https:// URL, e.g. https://api.algorithmia.com"]),
        ({"ALGORITHMIA_API_URL": "http://x", "ALGORITHMIA_API_KEY": "k", "ALGORITHMIA_JWT": "j"},
         "errors", ["ALGORITHMIA_API_KEY and ALGORITHMIA_JWT: set only one of them"]),
        ({"ALGORITHMIA_API_URL": "http://x", "ALGORITHMIA_API_KEY": "k"}, "serve",
         ["SLACK_BOT_TOKEN: required by serve", _NO_SECRET]),
        ({"ALGORITHMIA_API_URL": "http://x", "ALGORITHMIA_API_KEY": "k",
          "SLACK_BOT_TOKEN": "xoxb-1"}, "serve", [_NO_SECRET]),
        # Every problem at once, in the order of .env.example, one line each.
        ({"PORT": "abc", "LOG_LEVEL": "loud", "SHOW_INPUT": "maybe"}, "serve",
         ["SLACK_BOT_TOKEN: required by serve", _NO_SECRET,
          "ALGORITHMIA_API_URL: required", _NO_KEY, "SHOW_INPUT: must be true or false",
          "PORT: must be an integer from 0 to 65535",
          "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"]),
    ],
)  # fmt: skip
async def test_configuration_errors_exit_2_naming_each_variable(
    tmp_path: Path, env: dict[str, str], command: str, problems: list[str]
) -> None:
    args = ("errors", "acme/x") if command == "errors" else ("serve", "--port", "0")
    code, _, err = await run_cli(tmp_path, env, *args)
    assert code == 2
    assert err.splitlines() == [f"configuration error: {problem}" for problem in problems]


async def test_every_command_tells_every_malformed_setting_and_serve_what_it_needs(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    env = _env(cluster) | {"SLACK_BOT_TOKEN": "xoxp-a-user-token", "PORT": "not-a-port"}
    token = (
        "configuration error: SLACK_BOT_TOKEN: must be the app's bot token (xoxb-…), not a user"
        " or app-level token"
    )
    port = "configuration error: PORT: must be an integer from 0 to 65535"
    code, out, err = await run_cli(tmp_path, env, "errors", "acme/image_tagger")
    assert (code, out, err.splitlines()) == (2, "", [token, port])
    code, _, err = await run_cli(tmp_path, env, "serve", "--port", "0")
    assert (code, err.splitlines()) == (2, [token, f"configuration error: {_NO_SECRET}", port])
    assert cluster.requests == []


async def test_errors_takes_its_options_before_or_after_a_flag(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    before = await run_cli(
        tmp_path, _env(cluster), "errors", "acme/image_tagger", "since:3d", "--json"
    )
    after = await run_cli(
        tmp_path, _env(cluster), "errors", "acme/image_tagger", "--json", "since:3d"
    )
    assert before[0] == after[0] == 0
    assert json.loads(before[1])["groups"] == json.loads(after[1])["groups"]
    code, _, err = await run_cli(tmp_path, _env(cluster), "errors", "acme/x", "--jsn")
    assert code == 2
    assert "unrecognized arguments: --jsn" in err


async def test_errors_json_fails_in_json_too(cluster: SampleCluster, tmp_path: Path) -> None:
    """A script reading `--json` gets the one object for every failure it can name: a bad
    option, and settings that are missing (both exit 2, as without `--json`)."""
    code, out, err = await run_cli(
        tmp_path, _env(cluster), "errors", "acme/image_tagger", "since:3y", "--json"
    )
    assert (code, err) == (2, "")
    failure = json.loads(out)["error"]
    assert failure["kind"] == "usage"
    assert "since:3y" in failure["message"]
    code, out, err = await run_cli(tmp_path, {}, "errors", "acme/image_tagger", "--json")
    assert (code, err) == (2, "")
    failure = json.loads(out)["error"]
    assert failure["kind"] == "configuration"
    assert failure["message"] == f"ALGORITHMIA_API_URL: required; {_NO_KEY}"
    assert cluster.requests == []


async def _piped(cwd: Path, env: dict[str, str], reader: str, *args: str) -> tuple[int, str]:
    """`python -m bot ARGS | READER` in bash: the bot's exit status and its stderr."""
    line = " ".join([shlex.quote(sys.executable), "-m", "bot", *map(shlex.quote, args)])
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", f"{line} | {reader} >/dev/null; exit ${{PIPESTATUS[0]}}", cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, err.decode()


@pytest.mark.parametrize(
    "args",
    [("errors", "--json"), ("errors", "acme/x", "--json", "--bogus"),
     ("errors", "acme/x", "--json", "--traces")],
)  # fmt: skip
async def test_errors_json_tells_a_malformed_command_line_in_json(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    code, out, err = await run_cli(tmp_path, {}, *args)
    assert (code, err) == (2, "")
    assert json.loads(out)["error"]["kind"] == "usage"


async def test_output_cut_short_by_its_reader_is_no_traceback(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    """`demo | head -1`: the reader leaves early; the bot stops quietly, exit 1 (its output
    was cut short); a failure's own exit status is kept when no one reads it."""
    code, err = await _piped(tmp_path, {}, "head -1", "demo")
    assert (code, err) == (1, "")
    code, err = await _piped(
        tmp_path, _env(cluster), "true", "errors", "acme/image_tagge", "--json"
    )
    assert (code, err) == (1, "")  # no such algorithm: 1, as when read
    code, err = await _piped(tmp_path, _env(cluster), "true", "errors", "acme/x", "since:3y")
    assert code == 2  # a usage error: 2


async def test_demo_cluster_serves_the_sample_for_errors_until_interrupted(tmp_path: Path) -> None:
    """`demo --cluster` prints the settings that reach its sample cluster; `errors` with them
    reads the sample; Ctrl-C ends it cleanly."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo", "--cluster", cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = ""
        while "export " not in line:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "demo --cluster ended before printing its settings"
        settings = dict(pair.split("=", 1) for pair in line.split("export ", 1)[1].split())
        code, out, err = await run_cli(tmp_path, settings, "errors", "acme/image_tagger")
        assert (code, err) == (0, "")
        assert out.startswith("acme/image_tagger: 80 errors in 25 groups")
    finally:
        process.send_signal(signal.SIGINT)
        _, err_bytes = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert b"Traceback" not in err_bytes


async def test_demo_prints_the_conversation(tmp_path: Path) -> None:
    code, out, _ = await run_cli(tmp_path, {}, "demo")
    assert code == 0
    assert "#C_GENERAL" in out
    # The name links to the algorithm's page in the console (derived from the API URL).
    assert "/algorithms/acme/image_tagger)*: 30 errors in 16 groups matching `since:2d`" in out
    general, _, subscribed = out.partition("\n#C_OTHER\n")
    assert general.count("    ↳ ") == 16
    assert "subscribed this channel to *acme/image_tagger*, `every:15m`" in subscribed
    assert subscribed.count("[Resolve] [Resolve in next version]") == 2  # two kinds, two alerts
    # The Java bug had one occurrence at the first run (below min:2): announced at the second,
    # mentioning Carol; the Python bug's recurrence mentions Alice, who took its alert.
    assert ":loudspeaker: @U_CAROL" in subscribed
    assert "Owner: @U_ALICE since" in subscribed
    assert "↳ :raised_hand: @U_ALICE took this." in subscribed
    assert "↳ @U_ALICE 1 new occurrence" in subscribed
    assert "📎 trace-req-" in out
    assert "[only visible to you]" in out
    assert "There is no algorithm *acme/image_tager*" in out


def _left(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("bot.db*"))


async def test_a_token_without_the_scopes_of_the_manifest_is_a_settings_error(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    old_install = [s for s in BOT_SCOPES if s not in ("channels:history", "groups:history")]
    async with SlackStandIn(scopes=old_install) as slack:
        env = _env(cluster) | {
            "SLACK_BOT_TOKEN": "xoxb-old",
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        }
        code, _, err = await run_cli(tmp_path, env, "digest", "--once")
        assert code == 2
        assert "lacks the scopes channels:history, groups:history: reinstall it" in err
        assert not _left(tmp_path)  # the failed start left no database file
        env["SLACK_SIGNING_SECRET"] = "s"
        code, _, err = await run_cli(tmp_path, env, "serve", "--port", "0")
        assert code == 2
        assert not _left(tmp_path)


async def test_version_help_and_traces(cluster: SampleCluster, tmp_path: Path) -> None:
    code, out, _ = await run_cli(tmp_path, {}, "--version")
    assert code == 0
    assert re.fullmatch(r"algo-errors-bot \d+\.\d+\.\d+\n", out)
    for command, setting in (("serve", "SLACK_SIGNING_SECRET"), ("digest", "DIGEST_TICK_SECONDS"),
                             ("errors", "ALGORITHMIA_API_URL")):  # fmt: skip
        code, out, _ = await run_cli(tmp_path, {}, command, "--help")
        assert code == 0
        assert "settings read" in out
        assert setting in out
    code, out, _ = await run_cli(tmp_path, _env(cluster), "errors", "acme/image_tagger", "--traces")
    assert code == 0
    assert 'File "./src/faces.py", line 63, in _to_gray' in out  # a trace, under its group


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        ("service_unavailable", 1, "Slack answered 200 (service_unavailable)"),  # Slack's trouble
        ("internal_error", 1, "Slack answered 200 (internal_error)"),
        ("invalid_auth", 2, "SLACK_BOT_TOKEN: Slack refused it (invalid_auth)"),  # the token's
    ],
)
async def test_only_a_refused_token_is_a_settings_error_at_start(
    cluster: SampleCluster, tmp_path: Path, error: str, code: int, said: str
) -> None:
    """Slack in trouble answers 200 with an error too: that is Slack unreachable (`digest
    --once` exits 1 naming it; `serve` would retry), not a setting for an operator to fix."""
    async with SlackStandIn() as slack:
        slack.fail_next("auth.test", error=error)
        env = _env(cluster) | {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        }
        exit_code, _, err = await run_cli(tmp_path, env, "digest", "--once")
        assert (exit_code, said in err) == (code, True), err


async def test_a_start_that_cannot_read_its_settings_or_listen_says_so_in_one_line(
    cluster: SampleCluster, tmp_path: Path
) -> None:
    """A `.env` saved in another encoding; a port another process holds; a multi-host
    `DATABASE_URL` with a port that is no number: one line naming it, exit 2, no traceback."""
    (tmp_path / ".env").write_bytes(b"LOG_LEVEL=caf\xe9\n")
    code, _, err = await run_cli(tmp_path, _env(cluster), "errors", "acme/image_tagger")
    assert (code, err) == (2, "configuration error: .env: not UTF-8 text; save it as UTF-8\n")
    (tmp_path / ".env").unlink()

    async with SlackStandIn() as slack:
        env = _env(cluster) | {
            "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.base_url,
            "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        }  # fmt: skip
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = str(taken.getsockname()[1])
            code, _, err = await run_cli(tmp_path, env, "serve", "--host", "127.0.0.1",
                                         "--port", port)  # fmt: skip
        assert code == 2
        assert err.splitlines()[-1] == (
            f"configuration error: PORT: cannot listen on 127.0.0.1:{port} (Address already in use)"
        )
        assert "Traceback" not in err

    env = _env(cluster) | {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "DATABASE_URL": "postgresql://bot:Zq7@127.0.0.1:5432,127.0.0.1:abc/algo",
    }
    code, _, err = await run_cli(tmp_path, env, "digest", "--once")
    assert code == 2
    assert err.startswith("configuration error: DATABASE_URL: not a database URL: its port")
    assert "Zq7" not in err
