"""Benchmark bulk ingest: N example rows (default 10M) appended to a store's `examples` table as Arrow batches.

Rows go through `Store.append_batches` (one transaction, batches streamed, memory bounded by a batch). Prints rows/s,
seconds and the process's peak RSS against the goals (10M rows in <= 60 s; memory bounded by a batch, shown as the
RSS growth after the first batches against the final peak).

    python benchmarks/store_bench.py [--rows 10000000] [--batch 200000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from harness.store.db import Store

GOAL_ROWS, GOAL_S = 10_000_000, 60.0
WORDS = ["please", "reset", "your", "password", "order", "refund", "invoice", "delayed", "package", "account",
         "locked", "update", "card", "charged", "twice", "screen", "broken", "warranty", "tracking", "address"]


def rss_mb() -> float:
    """The process's resident memory now, in MB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pool(rng: np.random.Generator, n: int, words: int, prefix: str) -> pa.Array:
    """n distinct texts of about `words` words (what batches draw their prompts and outputs from)."""
    return pa.array([f"{prefix} {i}: " + " ".join(rng.choice(WORDS, size=words)) for i in range(n)])


@dataclass
class Pools:
    """The texts batches draw from, built once (so the timing is the store's, not Python's string formatting)."""

    prompts: pa.Array
    refs: pa.Array
    outputs: pa.Array
    details: pa.Array
    ids: pa.Array
    variants: pa.Array


def pools(n_rows: int, n_examples: int = 5_000, seed: int = 0) -> Pools:
    rng = np.random.default_rng(seed)
    details = [json.dumps({"exact_match": bool(i % 3 == 0), "rougeL": round(float(x), 4), "loss": 1.5})
               for i, x in enumerate(rng.random(1000))]
    return Pools(pool(rng, n_examples, 9, "Ticket"), pool(rng, n_examples, 12, "Answer"), pool(rng, 50_000, 12, "Reply"),
                 pa.array(details), pa.array([f"ex-{i:05d}" for i in range(n_examples)]),
                 pa.array([f"{i:012x}" for i in range(n_rows // n_examples + 1)]))


def batches(p: Pools, n_rows: int, batch: int, seed: int = 0) -> Iterator[pa.RecordBatch]:
    """Example rows like the synthetic heldout suite's (about 380 bytes of text a row): variant v's row for example
    e, texts drawn from the pools."""
    rng = np.random.default_rng(seed)
    n_examples = len(p.ids)
    suite = pa.array(["heldout"])
    for start in range(0, n_rows, batch):
        k = np.arange(start, min(start + batch, n_rows))
        ex = pa.array(k % n_examples)
        yield pa.record_batch({
            "variant_id": p.variants.take(pa.array(k // n_examples)),
            "suite": suite.take(pa.array(np.zeros(len(k), dtype=np.int64))),
            "example_id": p.ids.take(ex),
            "prompt": p.prompts.take(ex),
            "reference": p.refs.take(ex),
            "output": p.outputs.take(pa.array(rng.integers(0, len(p.outputs), len(k)))),
            "passed": pa.array(rng.random(len(k)) < 0.6),
            "detail": p.details.take(pa.array(rng.integers(0, len(p.details), len(k)))),
        })


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=GOAL_ROWS, help="example rows to ingest (default 10M)")
    ap.add_argument("--batch", type=int, default=100_000, help="rows per Arrow record batch")
    ap.add_argument("--keep", type=Path, default=None, help="keep the store in this folder")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="store-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "bench.duckdb"
    db.unlink(missing_ok=True)
    with Store(db) as store:
        store.query("SELECT 1")
        before = rss_mb()
        seen: list[float] = []
        text_count = [0]

        def watched() -> Iterator[pa.RecordBatch]:
            for i, b in enumerate(batches(texts, args.rows, args.batch)):
                if i in (2, 10) or (i and i % 10 == 0):
                    seen.append(rss_mb())
                text_count[0] += sum(c.nbytes for c in b.columns if pa.types.is_string(c.type))
                yield b

        texts = pools(args.rows)
        c0 = time.process_time()
        for _ in batches(texts, min(args.rows, 1_000_000), args.batch):
            pass
        gen_cpu = (time.process_time() - c0) * args.rows / min(args.rows, 1_000_000)
        t0, c0 = time.perf_counter(), time.process_time()
        n = store.append_batches("examples", watched())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stored = store.query("SELECT count(*) AS n FROM examples")["n"].iloc[0]
    text_bytes = text_count[0]
    assert stored == n == args.rows, (stored, n, args.rows)
    peak = peak_rss_mb()
    early = seen[0] if seen else float("nan")
    projected = wall * GOAL_ROWS / n
    print(f"rows:      {n:,} example rows, {text_bytes / n:.0f} bytes of text a row, in batches of {args.batch:,} "
          f"({db.stat().st_size / 1e6:.0f} MB on disk)")
    print(f"time:      {wall:.1f} s wall, {cpu:.1f} s CPU (this process; making the batches alone takes about "
          f"{gen_cpu:.1f} s CPU of it) -> {n / wall:,.0f} rows/s wall, {n / cpu:,.0f} rows per CPU second")
    print(f"goal:      10M rows <= {GOAL_S:.0f} s: {'measured' if n >= GOAL_ROWS else 'extrapolated'} "
          f"{projected:.1f} s for 10M = {projected / GOAL_S:.2f}x the goal's time")
    print(f"memory:    RSS {before:.0f} MB before, {early:.0f} MB after 3 batches, peak {peak:.0f} MB "
          f"(batch of {args.batch:,} rows; peak / after-3-batches = {peak / early:.2f}x)")
    if len(seen) >= 4:  # flat, not growing with the rows appended, is what "bounded by a batch" means
        q = [seen[int(f * (len(seen) - 1))] for f in (0.25, 0.5, 0.75, 1.0)]
        print("           RSS at 1/4, 1/2, 3/4 and all of the rows: " + ", ".join(f"{x:.0f}" for x in q) + " MB")
    ok = projected <= GOAL_S
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
