"""A rating sheet in a real browser (Playwright driving Debian's Chromium): filled in, kept across a reload, saved
as JSON, imported, stored as ratings; no network request, no script injected by hostile outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness.cli
from harness.store.db import Store
from harness.store.review import load_sheet
from harness.testing.synthetic import Synthetic, make_synthetic_store

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
CRITERIA = {"accuracy": "4", "format": "5", "tone": "3", "completeness": "2", "hallucination": "no"}


def test_fill_reload_save_import(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium (or set HARNESS_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    db = tmp_path / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=3, n_heldout=8, n_format=4, n_hallucination=4, n_general=6,
                                       failed=False, hostile=True))
    assert harness.cli.main(["review", "export", "--db", str(db), "-o", str(tmp_path / "s"), "--sample", "3",
                             "--variants", "full-e2-lr1e-4-s0", "--raters", "dana"]) == 0
    html = next((tmp_path / "s").glob("*.html"))
    with Store(db, read_only=True) as s:
        sheet = load_sheet(s, str(s.query("SELECT sheet_id FROM review_sheets").iloc[0, 0]))
    assert sheet is not None
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (problems.append(d.message), d.dismiss()))
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(html.resolve().as_uri())
        page.wait_for_selector("body[data-ready]")
        assert page.input_value("#rater") == "dana"
        assert page.inner_text("#progress") == "0 of 3 items complete"
        for pos in (1, 2, 3):
            item = f"section[data-position='{pos}']"
            for label in ("A", "B"):
                for criterion, value in CRITERIA.items():
                    page.check(f"{item} .output[data-label='{label}'] input[data-criterion='{criterion}']"
                               f"[value='{value}']")
            if pos < 3:
                page.check(f"{item} input[data-preferred][value='{'A' if pos == 1 else 'none'}']")
        page.fill("section[data-position='1'] .output[data-label='B'] textarea", "<b>too</b> terse")
        assert page.inner_text("#progress") == "2 of 3 items complete"  # item 3 has no preference yet
        page.reload()
        page.wait_for_selector("body[data-ready]")
        assert page.is_checked("section[data-position='2'] .output[data-label='B'] input[data-criterion='tone']"
                               "[value='3']")
        assert page.input_value("section[data-position='1'] .output[data-label='B'] textarea") == "<b>too</b> terse"
        page.check("section[data-position='3'] input[data-preferred][value='B']")
        assert page.inner_text("#progress") == "3 of 3 items complete"
        with page.expect_download() as info:
            page.click("#save")
        saved = tmp_path / "dana.json"
        info.value.save_as(saved)
        assert "saved 3 rated item(s)" in page.inner_text("#save-msg")
        context.close()
        browser.close()
    assert problems == [] and requests == [html.resolve().as_uri()] * 2  # the page, then its reload: nothing else
    assert harness.cli.main(["review", "import", str(saved), "--db", str(db)]) == 0
    with Store(db, read_only=True) as s:
        rows = s.query("SELECT * FROM ratings ORDER BY example_id, label, criterion")
    assert len(rows) == 3 * 2 * (5 + 1) and set(rows["rater"]) == {"dana"}
    for r in rows.to_dict("records"):
        assert r["variant_id"] == sheet["items"][r["example_id"]][r["label"]]
        if r["criterion"] in CRITERIA:
            assert r["value"] == (0.0 if r["criterion"] == "hallucination" else float(CRITERIA[r["criterion"]]))
    prefs = rows[rows["criterion"] == "preferred"]
    by_item = {e: dict(zip(g["label"], g["value"], strict=True)) for e, g in prefs.groupby("example_id")}
    order = list(sheet["items"])
    assert by_item[order[0]] == {"A": 1.0, "B": 0.0} and by_item[order[1]] == {"A": 0.0, "B": 0.0}
    assert by_item[order[2]] == {"A": 0.0, "B": 1.0}
    comments = rows[rows["comment"].notna()]
    assert set(comments["comment"]) == {"<b>too</b> terse"} and set(comments["label"]) == {"B"}
    assert harness.cli.main(["review", "import", str(saved), "--db", str(db)]) == 0  # a second import
    with Store(db, read_only=True) as s:
        again = s.query("SELECT * FROM ratings ORDER BY example_id, label, criterion")
    assert again.equals(rows)
