"""Benchmark the HTML report at sweep scale: 200 variants x 500 held-out examples (plus the other suites).

Prints the build time (goal <= 15 s), the file size (goal <= 25 MB) and the load time in Chromium
(goal <= 3 s, to the leaderboard being rendered, and to every chart and the explorer being ready).

    python benchmarks/report_bench.py [--variants 200] [--examples 500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.report.build import build_report
from harness.testing.synthetic import Synthetic, make_synthetic_store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=200)
    ap.add_argument("--examples", type=int, default=500, help="held-out examples per variant")
    ap.add_argument("--keep", type=Path, default=None, help="keep the store and report in this folder")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "bench.duckdb"
    db.unlink(missing_ok=True)
    cfg = Synthetic(n_variants=args.variants - 1, n_heldout=args.examples, n_format=60, n_hallucination=40,
                    n_general=200)
    t0 = time.perf_counter()
    (run_id,) = make_synthetic_store(db, cfg)
    gen_s = time.perf_counter() - t0
    rows = args.variants * (cfg.n_heldout + cfg.n_format + cfg.n_hallucination + cfg.n_general)
    print(f"store: {args.variants} variants (with base), {rows:,} example rows, written in {gen_s:.1f} s")
    t0 = time.perf_counter()
    path = build_report(db, run_id, output=folder / "bench.html")
    build_s = time.perf_counter() - t0
    size_mb = path.stat().st_size / 1e6
    print(f"build time: {build_s:.2f} s (goal <= 15 s)")
    print(f"file size:  {size_mb:.2f} MB (goal <= 25 MB)")
    if not Path(CHROMIUM).exists():
        print(f"load time:  skipped ({CHROMIUM} not installed)")
        return 0
    times = load_times(path)
    lb, ready = statistics.median(t for t, _ in times), statistics.median(t for _, t in times)
    print(f"load time:  {lb:.2f} s to the leaderboard rendered (goal <= 3 s); {ready:.2f} s to charts and explorer "
          f"ready (median of {len(times)})")
    ok = build_s <= 15 and size_mb <= 25 and lb <= 3
    print("all goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
