"""The command line: parses arguments and calls `bot.wiring` (serve, digest, errors) or the
demo. Only `bot/__main__.py` and the console script import it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from bot.config import ConfigError, Settings, load_settings
from bot.domain.commands import CommandSyntaxError, Query, parse_command
from bot.logs import configure_logging
from bot.terminal import (
    error_as_json,
    failure_as_json,
    failure_as_text,
    result_as_json,
    result_as_text,
    shown,
)
from bot.usecases.results import LookupFailure
from bot.wiring.build import DatabaseUnreachable, SlackUnreachable, StartupError
from bot.wiring.run import digest_once, digest_worker, look_up, serve

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


_CLUSTER = ("ALGORITHMIA_API_URL", "ALGORITHMIA_API_KEY or ALGORITHMIA_JWT", "ALGORITHMIA_WEB_URL")
_LOGS = ("LOG_LEVEL", "LOG_FORMAT")
_COMMON = (
    "DATABASE_URL",
    "SHOW_INPUT",
    "PORT",
    *_LOGS,
    "DIGEST_TICK_SECONDS",
    "CLUSTER_CONCURRENCY",
)
SETTINGS_READ: dict[str, tuple[str, ...]] = {
    "serve": (
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)",
        "SLACK_API_URL", *_CLUSTER, *_COMMON,
    ),
    "digest": ("SLACK_BOT_TOKEN", "SLACK_API_URL", *_CLUSTER, *_COMMON),
    "errors": ("ALGORITHMIA_API_URL", "ALGORITHMIA_API_KEY or ALGORITHMIA_JWT", *_LOGS),
}  # fmt: skip
"""The settings each subcommand reads (from the environment or `.env`; see `.env.example`)."""


def _reads(command: str) -> str:
    return "settings read (environment or .env, see .env.example):\n  " + "\n  ".join(
        SETTINGS_READ[command]
    )


def _version() -> str:
    try:
        return f"algo-errors-bot {metadata.version('algo-errors-bot')}"
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "algo-errors-bot (not installed)"


def _port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535, as `PORT` takes it."""
    if not text.isascii() or not text.isdecimal() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: a number from 0 to 65535")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="algo-errors-bot",
        description="Slack bot for the recent errors of Algorithmia algorithms.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    serve_parser = commands.add_parser(
        "serve", help="run the Slack listener", epilog=_reads("serve"), formatter_class=raw
    )
    serve_parser.add_argument(
        "--host", default="0.0.0.0", help="the address to listen on (default: all, 0.0.0.0)"
    )
    serve_parser.add_argument("--port", type=_port, default=None, help="default: $PORT or 3000")
    serve_parser.add_argument(
        "--no-scheduler", action="store_true", help="the Slack listener alone, no digests"
    )
    digest_parser = commands.add_parser(
        "digest", help="run due digests: once (--once) or on schedule (a worker process)",
        epilog=_reads("digest"), formatter_class=raw,
    )  # fmt: skip
    digest_parser.add_argument("--once", action="store_true", help="run once and exit")
    digest_parser.add_argument(
        "--all", action="store_true", help="with --once: every subscription, due or not"
    )
    digest_parser.add_argument(
        "--host", default="0.0.0.0", help="the worker's /healthz, /readyz, /metrics listen here"
    )
    digest_parser.add_argument("--port", type=_port, default=None, help="default: $PORT or 3000")
    errors_parser = commands.add_parser(
        "errors", help="print an algorithm's grouped errors in the terminal",
        epilog=_reads("errors"), formatter_class=raw,
    )  # fmt: skip
    errors_parser.add_argument("target", help="owner/name or id:UUID")
    errors_parser.add_argument(
        "options", nargs="*", default=[], help="since:DURATION version:V type:T"
    )
    shown = errors_parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print one JSON object")
    shown.add_argument("--traces", action="store_true", help="print each group's latest trace")
    demo_parser = commands.add_parser(
        "demo", help="run the bot against a sample cluster and a Slack stand-in"
    )
    demo_parser.add_argument(
        "--cluster", action="store_true",
        help="serve only the sample cluster, to try `errors` against it (until Ctrl-C)",
    )  # fmt: skip
    return parser


def _configure_logging(settings: Settings, command: str) -> None:
    # `errors` promises one line on stderr when it fails: retries are logged only in DEBUG.
    quiet = command == "errors" and settings.log_level != "DEBUG"
    configure_logging(settings.log_level, settings.log_format, quiet=quiet)


def _errors(settings: Settings, args: argparse.Namespace) -> int:
    target, options, as_json = args.target, args.options, args.json
    try:
        command = parse_command(" ".join([target, *options]))
    except CommandSyntaxError as problem:
        return _usage_error(str(problem), as_json=as_json)
    if not isinstance(command, Query):
        return _usage_error("give an algorithm: owner/name or id:UUID", as_json=as_json)
    try:
        result = asyncio.run(look_up(settings, command))
    except LookupFailure as failure:
        if as_json:
            print(json.dumps(failure_as_json(failure)))
        else:
            print(failure_as_text(failure), file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        print(json.dumps(result_as_json(result)))
    else:
        print(result_as_text(result, traces=args.traces))
    return EXIT_OK


def _digest(settings: Settings, args: argparse.Namespace) -> int:
    once, everything = args.once, args.all
    if everything and not once:
        print("error: --all goes with --once", file=sys.stderr)
        return EXIT_USAGE
    if not once:
        port = args.port if args.port is not None else settings.port
        asyncio.run(digest_worker(settings, args.host, port))
        return EXIT_OK
    report = asyncio.run(digest_once(settings, everything=everything))
    for reason in [*report.failed.values(), *filter(None, [report.error])]:
        print(shown(f"failed: {reason}"), file=sys.stderr)  # the cluster's words among them
    print(f"digest: {len(report.ran)} ran, {len(report.failed)} failed, {report.posted} posted")
    return EXIT_FAILED if report.failed or report.error else EXIT_OK


def _usage_error(problem: str, *, as_json: bool) -> int:
    if as_json:
        hint = "Give owner/name or id:UUID, then any of since:DURATION version:V type:T."
        print(json.dumps(error_as_json("usage", problem, hint)))
    else:
        print(f"error: {problem}", file=sys.stderr)
    return EXIT_USAGE


def _print_problems(problems: Sequence[str], *, as_json: bool = False) -> None:
    if as_json:  # `errors --json`: the one object on stdout, as for its other failures
        hint = "Set the variables in the environment or in .env (see .env.example)."
        print(json.dumps(error_as_json("configuration", "; ".join(problems), hint)))
        return
    for problem in problems:
        print(f"configuration error: {problem}", file=sys.stderr)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)


_WRITERS = frozenset({"errors", "demo"})
"""The commands whose output goes to stdout, which a reader may leave (`| head`)."""


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = given[:1] == ["errors"] and "--json" in given
    code = EXIT_FAILED  # the output was cut short, unless the command had failed already
    try:
        code = _main(given)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, where a reader gone is caught, not at the exit
        return code
    except BrokenPipeError:
        if not _WRITERS.intersection(given[:1]):
            raise  # not stdout's: a failure of its own
        # `errors … | head`: the reader left. No traceback; the interpreter's own flush at
        # exit would raise again, so what is left goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return code or EXIT_FAILED


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors `errors --json` reads as JSON on stdout too."""

    json_errors = False
    """Set by `main` for the command line it parses: `errors` with `--json`."""

    def error(self, message: str) -> NoReturn:
        if _Parser.json_errors:
            _usage_error(message, as_json=True)
            self.exit(EXIT_USAGE)
        super().error(message)


def _main(argv: Sequence[str]) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "errors" and not any(a.startswith("-") for a in extra):
        args.options = [*args.options, *extra]  # options after a flag: `x/y --json since:1d`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "demo":
        from bot.demo import run_demo, serve_sample_cluster

        if not args.cluster:
            return asyncio.run(run_demo())
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            return asyncio.run(serve_sample_cluster())
        except KeyboardInterrupt:
            return EXIT_OK
    try:
        settings = load_settings(command=args.command)
    except ConfigError as error:
        _print_problems(error.problems, as_json=args.command == "errors" and args.json)
        return EXIT_USAGE
    _configure_logging(settings, args.command)
    if args.command == "errors":
        return _errors(settings, args)
    # uvicorn shuts HTTP down on SIGTERM (the process stops taking work: see `DRAIN_S`), then
    # re-raises the signal to the handler it found: make that an orderly exit, so `serve()`
    # still lets a digest run end and closes the Socket Mode connection.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if args.command == "digest":
            return _digest(settings, args)
        port = args.port if args.port is not None else settings.port
        asyncio.run(serve(settings, args.host, port, scheduler=not args.no_scheduler))
    except ConfigError as error:
        _print_problems(error.problems)
        return EXIT_USAGE
    except StartupError as error:  # a setting the database or Slack refused
        _print_problems([str(error)])
        return EXIT_USAGE
    except (SlackUnreachable, DatabaseUnreachable) as error:  # `digest --once`: nothing ran
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def run() -> None:
    """The console script: exit with `main()`'s status."""
    sys.exit(main())
