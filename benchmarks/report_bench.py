"""Benchmark the HTML report at sweep scale: 200 variants x 500 and x 5,000 held-out examples (plus other suites).

For each size prints the build time (goal <= 15 s; wall and CPU seconds, the machine may be shared), the file size
(goal <= 25 MB) and the load time in Chromium (goal <= 3 s to the leaderboard rendered; also to every chart and the
explorer ready), each with its ratio to the goal, and how many example rows the explorer embeds of how many.

    python benchmarks/report_bench.py [--variants 200] [--examples 500 5000] [--sample N|all] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.report.build import build_report
from harness.report.sample import DEFAULT_EXAMPLES, parse_limit
from harness.testing.synthetic import Synthetic, make_synthetic_store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
GOAL_BUILD_S, GOAL_MB, GOAL_LOAD_S = 15.0, 25.0, 3.0


def load_times(path: Path, tries: int = 3) -> list[tuple[float, float]]:
    """(seconds to the leaderboard rendered, seconds to the page ready) per fresh page load."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for _ in range(tries):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(path.resolve().as_uri(), wait_until="commit")
            page.wait_for_selector("#lb-table tbody tr >> nth=-1", state="visible", timeout=60_000)
            t_lb = time.perf_counter() - t0
            page.wait_for_selector("body[data-ready]", timeout=60_000)
            t_ready = time.perf_counter() - t0
            if errors:
                raise SystemExit(f"page errors: {errors}")
            out.append((t_lb, t_ready))
            page.close()
        browser.close()
    return out


def bench(folder: Path, variants: int, examples: int, sample: int | None, reuse: bool) -> bool:
    """Build (or reuse) the synthetic store of one size, build its report, load it; print figures; goals met?"""
    db = folder / f"bench-{variants}x{examples}.duckdb"
    cfg = Synthetic(n_variants=variants - 1, n_heldout=examples, n_format=60, n_hallucination=40, n_general=200)
    rows = variants * (cfg.n_heldout + cfg.n_format + cfg.n_hallucination + cfg.n_general)
    print(f"== {variants} variants x {examples:,} held-out examples ({rows:,} example rows in all suites)")
    if not (reuse and db.exists()):
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        make_synthetic_store(db, cfg)
        print(f"store:      written in {time.perf_counter() - t0:.1f} s")
    t0, c0 = time.perf_counter(), time.process_time()
    path = build_report(db, "latest", output=folder / f"bench-{variants}x{examples}.html", examples=sample)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    size_mb = path.stat().st_size / 1e6
    stated = re.search(r"A sample: ([0-9,]+) of ([0-9,]+) example rows", path.read_text(encoding="utf-8"))
    print("explorer:   " + (f"{stated.group(1)} of {stated.group(2)} example rows embedded (a sample)" if stated
                            else "every example row embedded"))
    print(f"build time: {build_s:.2f} s wall, {build_cpu:.2f} s CPU (goal <= {GOAL_BUILD_S:.0f} s: "
          f"{build_s / GOAL_BUILD_S:.2f}x wall, {build_cpu / GOAL_BUILD_S:.2f}x CPU)")
    print(f"file size:  {size_mb:.2f} MB (goal <= {GOAL_MB:.0f} MB: {size_mb / GOAL_MB:.2f}x)")
    ok = min(build_s, build_cpu) <= GOAL_BUILD_S and size_mb <= GOAL_MB
    if not Path(CHROMIUM).exists():
        print(f"load time:  skipped ({CHROMIUM} not installed)")
        return ok
    times = load_times(path)
    lb, ready = statistics.median(t for t, _ in times), statistics.median(t for _, t in times)
    print(f"load time:  {lb:.2f} s to the leaderboard rendered (goal <= {GOAL_LOAD_S:.0f} s: {lb / GOAL_LOAD_S:.2f}x); "
          f"{ready:.2f} s to charts and explorer ready (median of {len(times)})")
    return ok and lb <= GOAL_LOAD_S


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=200)
    ap.add_argument("--examples", type=int, nargs="+", default=[500, 5000], help="held-out examples per variant")
    ap.add_argument("--sample", default=str(DEFAULT_EXAMPLES), metavar="N|all",
                    help="the report's --examples: example rows the explorer embeds (default %(default)s)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the stores and reports in this folder")
    ap.add_argument("--reuse", action="store_true", help="reuse a store already in --keep of the same size")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    sample = parse_limit(args.sample)
    print("(build goal judged on CPU seconds where the machine is shared: the smaller of wall and CPU)")
    ok = all([bench(folder, args.variants, n, sample, args.reuse) for n in args.examples])
    print("all goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
