"""The report in a real browser: Playwright driving Debian's Chromium (apt-get install chromium)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.report.build import build_report
from harness.testing.synthetic import HOSTILE, Synthetic, make_synthetic_store

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium (or set HARNESS_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Opened:
    """A report open in a page, with everything the page said or asked for recorded."""

    def __init__(self, browser: Any, path: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.url = path.resolve().as_uri()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready]", timeout=30_000)

    def sort_values(self, col: int) -> list[float]:
        return self.page.eval_on_selector_all(
            "#lb-table tbody tr:not(.base)",
            f"rows => rows.map(r => r.cells[{col}].getAttribute('data-sort')).filter(x => x).map(Number)")


@pytest.fixture(scope="module")
def normal(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opened]:
    folder = tmp_path_factory.mktemp("b")
    ids = make_synthetic_store(folder / "r.duckdb", Synthetic(n_variants=12, n_heldout=40), runs=2)
    path = build_report(folder / "r.duckdb", ids[1], compare=[ids[0]], output=folder / "r.html")
    opened = Opened(browser, path)
    yield opened
    opened.page.close()


def test_leaderboard_rows_and_sorting(normal: Opened) -> None:
    page = normal.page
    assert page.locator("#lb-table tbody tr").count() == 13
    assert (page.locator("#lb-table tbody tr").first.get_attribute("class") or "").startswith("base")
    heads = page.locator("#lb-table thead tr:last-child th")
    col = [heads.nth(i).inner_text().strip() for i in range(heads.count())].index("field_accuracy")
    heads.nth(col).click()
    desc = normal.sort_values(col)
    assert len(desc) >= 8 and desc == sorted(desc, reverse=True)
    heads.nth(col).click()
    asc = normal.sort_values(col)
    assert asc == sorted(asc) and asc != desc
    assert (page.locator("#lb-table tbody tr").first.get_attribute("class") or "").startswith("base")
    page.fill("#lb-filter", "qlora")
    visible = page.locator("#lb-table tbody tr:visible")
    assert 0 < visible.count() < 13 and all("qlora" in t or "base" in t for t in visible.all_inner_texts())
    page.fill("#lb-filter", "")
    assert page.locator("#lb-table tbody tr.rec").count() == 1


def test_plots_render(normal: Opened) -> None:
    for cid in ("chart-loss", "chart-pareto", "chart-heatmap", "chart-bars", "chart-compare"):
        drawn = normal.page.evaluate(
            """id => { const c = document.getElementById(id); const ch = Chart.getChart(c);
                       return !!ch && c.width > 100 && c.height > 100 && c.toDataURL().length > 5000; }""", cid)
        assert drawn, cid
    normal.page.select_option("#bars-select", index=3)
    assert normal.page.evaluate("Chart.getChart(document.getElementById('chart-bars')).data.datasets[0].label") \
        == normal.page.locator("#bars-select option:checked").inner_text()


def test_explorer_shows_filters_and_pages(normal: Opened) -> None:
    page = normal.page
    cards = page.locator("#ex-list .ex")
    assert cards.count() == 5
    first = cards.first.inner_text()
    assert "PROMPT" in first.upper() and "REFERENCE" in first.upper() and "Ticket ex-0000" in first
    assert "per-example metrics" in first and "exact_match" in first
    label = page.locator("#ex-page").inner_text()
    page.click("#ex-next")
    assert page.locator("#ex-page").inner_text() != label and "Ticket ex-0005" in cards.first.inner_text()
    page.check("#ex-failed")
    assert cards.count() > 0 and set(page.locator("#ex-list .vbadge").all_inner_texts()) == {"fail"}
    page.uncheck("#ex-failed")
    page.check("#ex-changed")
    for card in cards.all():
        base, mine = card.locator(".bbadge").inner_text(), card.locator(".vbadge").inner_text()
        assert card.locator(".changed").count() == 1 or base != mine
    assert page.locator(".ex-diff del").count() + page.locator(".ex-diff ins").count() > 0  # word diff vs base
    page.uncheck("#ex-changed")
    page.select_option("#ex-suite", index=1)
    assert cards.count() > 0 and "fmt-000" in cards.first.inner_text()


def test_no_console_errors_and_no_network(normal: Opened) -> None:
    assert normal.errors == []
    assert normal.requests == [normal.url]
    assert normal.dialogs == []


def test_hostile_strings_fire_nothing_and_show_literally(browser: Any, tmp_path: Path) -> None:
    ids = make_synthetic_store(tmp_path / "h.duckdb", Synthetic(n_variants=6, n_heldout=12, n_general=12,
                                                                hostile=True, extra_suite=True))
    opened = Opened(browser, build_report(tmp_path / "h.duckdb", ids[0], output=tmp_path / "h.html"))
    page = opened.page
    page.select_option("#ex-size", "25")
    text = page.evaluate("document.body.textContent")
    assert page.locator("h1").inner_text().endswith("<script>alert(1)</script>")
    for h in HOSTILE:
        assert h in text, h  # every planted string is on the page as text (U+2028 included)
    assert page.locator("#ex-list img, #ex-list script, #ex-list a, #lb-table img, #findings img").count() == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 5
    page.select_option("#ex-suite", index=page.locator("#ex-suite option").count() - 1)  # the custom suite
    assert "custom<b>suite</b>" in page.locator("#ex-suite option:checked").inner_text()
    page.select_option("#ex-suite", index=0)
    page.fill("#ex-search", "onerror")
    assert page.locator("#ex-list .ex").count() >= 1 and HOSTILE[1] in page.locator("#ex-list .ex").first.inner_text()
    for b in (page.locator("#lb-table thead tr:last-child th").nth(i) for i in range(3)):
        b.click()
    assert opened.dialogs == [], opened.dialogs
    assert opened.requests == [opened.url], opened.requests
    assert opened.errors == [], opened.errors
    page.close()


def test_item19_leaderboard_fits_a_laptop_screen(browser: Any, tmp_path: Path) -> None:
    """At 1366x768 the page never scrolls sideways: the leaderboard opens with the columns that fit, the column
    picker adds the rest inside a scrolling wrapper whose first column stays put, and the newer suites' sections
    fit too."""
    kinds = ("heldout", "format", "hallucination", "general", "safety", "instructions", "memorization", "judge")
    (run,) = make_synthetic_store(tmp_path / "w.duckdb", Synthetic(n_variants=12, n_heldout=20, n_general=20,
                                                                   extra_suite=True, kinds=kinds))
    path = build_report(tmp_path / "w.duckdb", run, output=tmp_path / "w.html")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-ready]", timeout=30_000)
    no_overflow = "document.documentElement.scrollWidth <= innerWidth"
    table = "(() => { const t = document.getElementById('lb-table'); return [t.scrollWidth, t.parentElement.clientWidth]; })()"
    spans = """(() => { const g = [...document.querySelectorAll('#lb-table thead tr.groups th')].filter(th => !th.hidden);
                        const h = [...document.querySelectorAll('#lb-table thead tr:last-child th')].filter(th => !th.hidden);
                        return [g.reduce((n, th) => n + th.colSpan, 0), h.length]; })()"""
    assert page.evaluate(no_overflow), page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    width, room = page.evaluate(table)
    assert width <= room, (width, room)  # the default columns fit: no sideways scrolling at all
    total = page.locator("#lb-table thead tr:last-child th").count()
    page.click("#lb-columns summary")
    page.click("#lb-cols-all")
    assert page.locator("#lb-columns-count").inner_text() == f"{total} of {total}"
    width, room = page.evaluate(table)
    assert width > room and page.evaluate(no_overflow)  # every column: the table scrolls, the page does not
    g, h = page.evaluate(spans)
    assert g == h == total
    page.evaluate("document.getElementById('lb-table').parentElement.scrollLeft = 600")
    offset = page.evaluate("""(() => { const w = document.getElementById('lb-table').parentElement;
        return document.querySelector('#lb-table tbody td.name').getBoundingClientRect().left
               - w.getBoundingClientRect().left; })()""")
    assert abs(offset) < 2, offset  # the variant column stays in view while the table scrolls
    page.click("#lb-cols-default")
    width, room = page.evaluate(table)
    g, h = page.evaluate(spans)
    assert width <= room and g == h < total
    for sid in ("safety", "instructions", "memorization", "judge"):
        page.locator(f"#{sid}").scroll_into_view_if_needed()
        assert page.locator(f"#{sid}").bounding_box()["width"] <= 1366
    assert page.evaluate(no_overflow) and errors == []
    page.close()


def test_sampled_explorer_states_its_sample_and_shows_each_variants_rows(browser: Any, tmp_path: Path) -> None:
    ids = make_synthetic_store(tmp_path / "s.duckdb", Synthetic(n_variants=12, n_heldout=40))
    opened = Opened(browser, build_report(tmp_path / "s.duckdb", ids[0], output=tmp_path / "s.html", examples=150))
    page = opened.page
    note = page.locator("#ex-sample").inner_text()
    assert "A sample:" in note and "--examples all" in note and "SELECT e.* FROM examples" in note
    cards = page.locator("#ex-list .ex")
    assert cards.count() == 5 and page.locator("#ex-list .badge.why").count() == 5  # why each example is shown
    assert " of 40)" in page.locator("#ex-suite option").first.inner_text()  # heldout: n shown of 40 examples
    options = page.locator("#ex-variant option").all_inner_texts()
    sparse = next(i for i, t in enumerate(options) if " shown" in t and "(base)" not in t)
    page.select_option("#ex-variant", index=sparse)
    shown = int(options[sparse].split("·")[1].split()[0])
    assert page.locator("#ex-page").inner_text().endswith(f"of {-(-shown // 5)}") or shown <= 5
    assert cards.count() == min(5, shown) and all(b in ("pass", "fail") for b in
                                                   page.locator("#ex-list .vbadge").all_inner_texts())
    assert opened.errors == [] and opened.requests == [opened.url]
    page.close()
