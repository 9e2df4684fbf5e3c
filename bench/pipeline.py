"""Reading one response: decoded, validated, parsed, grouped and rendered, against `json.loads`.

Targets: at most 3x `json.loads` of the same bytes for responses of 20, 200 and 10,000 records,
and under 10 ms for 200. Cold: the caches are cleared before each run (outside the timing), so
nothing learnt from the previous one is reused. The records are the 80 sample records (real
public traces of five runtimes, long chained Python traces among them) cycled to the size, each
made unique (request id, time, and every line number shifted) so no parse is ever reused from an
earlier record. The pipeline and `json.loads` are timed alternately in the same run.

    .venv/bin/python bench/pipeline.py
    .venv/bin/python bench/pipeline.py --floor   # what no pure-Python reading can skip

`--floor` times, for 200 records, the parts every reading of a response pays whatever its
code: the validation into records alone, the trace reader's frame patterns alone (one
`findall` over each trace, the fewest regular-expression passes that find the frames) and the
rendering of the 21 messages alone, each against `json.loads` in the same run.
"""

from __future__ import annotations

import gc
import json
import re
import statistics
import sys
import time
import uuid
from typing import Any

from bot.domain.commands import Query, parse_command
from bot.errors.grouping import clear_caches
from bot.errors.records import read_records, validate_records
from bot.slack.blocks import query as query_blocks
from bot.testing.sample_cluster import sample_records
from bot.usecases.query import summarize

TARGET_MS = 10.0
"""For a response of 200 records."""
TARGET_RATIO = 3.0
"""For every size: the pipeline's median over `json.loads`'s median."""
SIZES = {20: 400, 200: 200, 10_000: 11}
"""Records per response: runs."""


def response_records(now_ms: int, count: int = 200) -> list[dict[str, Any]]:
    base = sample_records(now_ms)
    records = []
    for i in range(count):
        record = dict(base[i % len(base)])
        shift = i // len(base)
        record["request_id"] = f"req-{uuid.UUID(int=i)}"
        record["created_at"] -= i * 1000
        error = re.sub(
            r"(line |\.java:|\.js:|\.rb:)(\d+)",
            lambda m, s=shift: f"{m.group(1)}{int(m.group(2)) + s}",
            record["error"],
        )
        # A number in the message (masked by the fingerprint) makes every string unique.
        record["error"] = error.replace("\nstacktrace:\n", f" (attempt {i})\nstacktrace:\n", 1)
        records.append(record)
    return records


def pipeline(payload: bytes, query: Query, now_ms: int) -> int:
    # As the client reads a response: one pass when well formed, else the long way.
    batch = read_records(payload) or validate_records(json.loads(payload))
    result = summarize(query, batch, now_ms)
    built = [query_blocks.query_parent(result, "U1")]
    built += [
        query_blocks.group_reply(g).message for g in result.groups[: query_blocks.MAX_REPLIES]
    ]
    return len(built)


def interleaved(
    first: Any, second: Any, runs: int, *, cold: bool = True
) -> tuple[list[float], list[float]]:
    """Time two functions alternately, so machine noise hits both alike. Cold: the caches are
    cleared before each call, untimed (a serving bot never pays for forgetting)."""
    a, b = [], []
    for _ in range(runs):
        for fn, samples in ((first, a), (second, b)):
            if cold:
                clear_caches()  # nothing learnt from the previous run
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1000)
    return a, b


def main() -> None:
    now_ms = int(time.time() * 1000)
    query = parse_command("acme/image_tagger")
    assert isinstance(query, Query)
    print(f"target: pipeline <= {TARGET_RATIO:g}x json.loads, cold; under {TARGET_MS:g} ms for 200")
    print(
        f"{'records':>8} {'KiB':>6} {'json.loads ms':>14} {'pipeline ms':>12} {'ratio':>7}"
        f" {'paired':>7}  target"
    )
    for count, runs in SIZES.items():
        records = response_records(now_ms, count)
        payload = json.dumps(records).encode()
        gc.collect()
        loads, full = interleaved(
            lambda p=payload: json.loads(p), lambda p=payload: pipeline(p, query, now_ms), runs
        )
        loads_ms, full_ms = statistics.median(loads), statistics.median(full)
        paired = statistics.median(f / j for f, j in zip(full, loads, strict=True))
        ratio = full_ms / loads_ms
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(
            f"{count:>8} {len(payload) / 1024:>6.0f} {loads_ms:>14.3f} {full_ms:>12.3f}"
            f" {ratio:>6.1f}x {paired:>6.1f}x  <= {TARGET_RATIO:g}x: {verdict}"
            f" ({ratio / TARGET_RATIO:.2f} of target)"
        )
        if count == 200:
            timed_200 = full_ms
            _, warm = interleaved(
                lambda p=payload: json.loads(p),
                lambda p=payload: pipeline(p, query, now_ms),
                runs,
                cold=False,
            )
            warm_200 = statistics.median(warm)
    print(f"200 records again (memoized, as a serving bot re-reads them): median {warm_200:.3f} ms")
    verdict = "meets" if timed_200 < TARGET_MS else "MISSES"
    print(
        f"target < {TARGET_MS} ms per response of 200: {verdict} "
        f"({timed_200 / TARGET_MS:.2f} of target)"
    )


def floor() -> None:
    """The parts no reading of 200 records written in Python can skip, against `json.loads`."""
    from bot.errors import traces
    from bot.errors.grouping import read_occurrences

    now_ms = int(time.time() * 1000)
    query = parse_command("acme/image_tagger")
    assert isinstance(query, Query)
    payload = json.dumps(response_records(now_ms, 200)).encode()
    batch = read_records(payload)
    assert batch is not None
    patterns = {
        traces.Runtime.PYTHON: traces._PY_FRAME,
        traces.Runtime.JAVA: traces._JAVA_FRAME_LINE,
        traces.Runtime.NODE: traces._NODE_FRAME_START,
        traces.Runtime.RUBY: traces._RUBY_FRAME_LINE,
    }
    found = [(o.parsed.runtime, o.parsed.trace) for o in read_occurrences(batch.records)]
    scanned = [("\n" + trace, patterns[runtime]) for runtime, trace in found if runtime in patterns]
    result = summarize(query, batch, now_ms)

    def frames() -> None:
        for trace, pattern in scanned:
            pattern.findall(trace)

    def rendering() -> None:
        query_blocks.query_parent(result, "U1")
        for group in result.groups[: query_blocks.MAX_REPLIES]:
            query_blocks.group_reply(group).message  # noqa: B018 (the decoding is the cost)

    parts = {
        "validation into records": lambda: read_records(payload),
        f"frame patterns over {len(scanned)} traces": frames,
        f"rendering {1 + min(len(result.groups), query_blocks.MAX_REPLIES)} messages": rendering,
    }
    print(f"200 records, {len(payload) / 1024:.0f} KiB; each part's median against json.loads's")
    total = 0.0
    for name, part in parts.items():
        loads, timed = interleaved(lambda: json.loads(payload), part, 300, cold=False)
        ratio = statistics.median(timed) / statistics.median(loads)
        total += ratio
        print(f"  {name:<32} {statistics.median(timed):6.3f} ms  {ratio:4.2f}x")
    print(f"floor: {total:.2f}x json.loads before any trace is read into frames, fingerprinted or")
    print(f"grouped (target {TARGET_RATIO:g}x)")


if __name__ == "__main__":
    if "--floor" in sys.argv:
        floor()
    else:
        main()
