"""Full-page screenshot of a report (docs/report.png), from a store or, by default, synthetic demo data.

    python benchmarks/report_screenshot.py [--db results.duckdb [--run RUN_ID]] [-o docs/report.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.report.build import build_report
from harness.testing.synthetic import Synthetic, make_synthetic_store

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=None, help="a results store (default: synthetic demo data)")
    ap.add_argument("--run", default="latest")
    ap.add_argument("--compare", nargs="*", default=[])
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/report.png"))
    ap.add_argument("--width", type=int, default=1760)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="report-shot-"))
    db, run, compare = args.db, args.run, args.compare
    if db is None:
        db = tmp / "demo.duckdb"
        ids = make_synthetic_store(db, Synthetic(n_variants=11, n_heldout=60, n_general=80,
                                                 name="acme-support (synthetic demo data)"), runs=2)
        run, compare = ids[-1], ids[:-1]
    html = build_report(db, run, compare=compare, output=tmp / "report.html")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": args.width, "height": 900}, device_scale_factor=1)
        page.goto(html.resolve().as_uri())
        page.wait_for_selector("body[data-ready]")
        page.evaluate("document.querySelector('header.top').style.position = 'static'")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.output), full_page=True)
        browser.close()
    print(f"screenshot written to {args.output}")


if __name__ == "__main__":
    main()
