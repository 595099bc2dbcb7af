"""Run the benchmarks: ``python -m bench`` runs them all, ``python -m bench PART [flags]`` one.

Parts (each prints its numbers and a summary table; nothing is asserted):

    ingest   POST /api/v1/events end to end against the bare database baseline (bench/ingest.py)
             flags: --quick --db postgres|sqlite|both --shape bench|few|hot|both|all
                    --servers api1,api2,portal --events N --batch N --duplicates F --clients N
                    --spread even|kernel --overlap-events N --no-overlap
             --preload N: the scale part below instead, with all the flags
    scale    N preloaded events (default 50M, COPY over 13 months, 1,000 accounts), today's table (0017)
             against head (partitioned): fill pace, bytes per event, ingestion through
             api serve --workers 2, usage view p50/p95, dedupe of resent events, archive s/million
             (bench/scale.py; databases kept until --drop). Not part of ``python -m bench``.
             flags: --preload N --accounts N --layout today|head|both --rebuild --drop --events N
                    --ingest-accounts N --clients N --runs N --resend N --no-archive --no-ingest
                    --ledger-check --today-code DIR --skip-disk-check
    latency  p50/p99 of GET /api/v1/accounts/{id}/balance over one kept-alive connection (bench/latency.py)
             flags: --db postgres|sqlite --requests N --warmup N
    usage    30-day by-day-by-meter usage view on a 10M-event account (bench/usage_view.py)
             flags: --rebuild --events N --runs N --raw-runs N --no-sqlite --db NAME
    render   Usage page drawn in headless Chromium against the real portal (bench/page_render.py)
             flags: --loads N --rebuild --events N --db NAME
    memory   peak server RSS with 20 signed-in sessions on the Usage page (bench/memory.py)
             flags: --sessions N --hold SECONDS --rebuild --events N --db NAME
    authorize  POST /api/v1/authorize p50/p99 at 1,000 req/s over kept-alive connections (bench/authorize.py)
             flags: --url URL --token T --account ID --rate N --seconds S --connections N
    anomalies  spike detection: weekday baseline vs the 7-day mean, injected spikes (bench/anomalies.py)
             flags: --seeds N --days N --every N --factors 1.5,2,3 --by-shape --public (real series)
    support  search_accounts over 10,000 synthetic accounts x 90 days, p95 <= 200 ms (bench/support_search.py)
             flags: --accounts N --days N --runs N --rebuild --database postgres|sqlite|both --db NAME
    archive  one month of raw events to Parquet, checked, dropped: rows per second per step (bench/archive.py)
             flags: --events N --accounts N --keep

usage, render and memory share one generated PostgreSQL database (``meterline_bench_usage``
on ``$BENCH_PG_ADMIN_URL``, default postgresql://postgres@127.0.0.1:5432/postgres), built
once (about 4 minutes on 2 cores) and reused until ``--rebuild``. ``python -m bench``
passes no flags to the parts; ``python -m bench --rebuild`` regenerates the data first.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time

PARTS = {
    "ingest": "bench.ingest",
    "latency": "bench.latency",
    "usage": "bench.usage_view",
    "render": "bench.page_render",
    "memory": "bench.memory",
    "authorize": "bench.authorize",
    "support": "bench.support_search",
    "anomalies": "bench.anomalies",
    "archive": "bench.archive",
    "scale": "bench.scale",
}


def _run(part: str, argv: list[str]) -> bool:
    module_name = PARTS[part]
    if importlib.util.find_spec(module_name) is None:
        print(f"\n== {part}: skipped ({module_name} is not there) ==", flush=True)
        return True
    print(f"\n######## bench {part} {' '.join(argv)}".rstrip(), flush=True)
    began = time.perf_counter()
    try:
        importlib.import_module(module_name).main(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            print(f"bench {part} exited with {exit_.code}", flush=True)
            return False
    except Exception as error:  # one broken part must not hide the others' numbers
        print(f"bench {part} FAILED: {type(error).__name__}: {error}", flush=True)
        return False
    print(f"(bench {part} took {time.perf_counter() - began:.0f} s)", flush=True)
    return True


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv and argv[0] in PARTS:
        return 0 if _run(argv[0], argv[1:]) else 1
    if argv and argv != ["--rebuild"]:
        print(f"unknown part {argv[0]!r}; choose one of {', '.join(PARTS)}\n{__doc__}", file=sys.stderr)
        return 2
    ok = True
    for part in ("ingest", "latency", "usage", "render", "memory"):
        part_argv = ["--rebuild"] if argv == ["--rebuild"] and part == "usage" else []
        ok = _run(part, part_argv) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
