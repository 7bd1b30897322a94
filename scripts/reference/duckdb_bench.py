#!/usr/bin/env python3
"""DuckDB anchor for `provdb bench sql`: times SQL queries over a Parquet file (needs duckdb).

The file is exposed as a view `records`, so the queries are the same text provdb runs. DuckDB
is limited to --threads threads. For each query: one warm-up run, then --reps timed runs of
execute + fetchall (wall clock, and the process's CPU time over all its threads); prints one
JSON object with the best times of each query and the rows of its last run, which the bench
compares with provdb's rows.

  python scripts/reference/duckdb_bench.py --parquet F.parquet --threads 2 --reps 3 \
      --query group "SELECT ..." --query filter "SELECT ..."
"""

from __future__ import annotations

import argparse
import json
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the repo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--query", nargs=2, action="append", metavar=("NAME", "SQL"), required=True)
    args = ap.parse_args()
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(args.threads)}")
    path = args.parquet.replace("'", "''")
    con.execute(f"CREATE VIEW records AS SELECT * FROM read_parquet('{path}')")
    out = {"duckdb": duckdb.__version__, "threads": args.threads, "reps": args.reps, "queries": {}}
    for name, sql in args.query:
        rows = con.execute(sql).fetchall()  # warm-up: file in the page cache, metadata read
        times, cpu = [], []
        for _ in range(max(args.reps, 1)):
            started, started_cpu = time.perf_counter(), time.process_time()
            rows = con.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        out["queries"][name] = {
            "best_s": min(times),
            "times_s": times,
            "best_cpu_s": min(cpu),
            "rows": [list(row) for row in rows],
        }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
