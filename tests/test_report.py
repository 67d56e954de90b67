"""The HTML report from a real DuckDB store of synthetic rows: contents, numbers, escaping, no external resources."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape

from harness.cli import main
from harness.report.build import SCRIPTS, build_report, script_json
from harness.store.db import Store
from harness.store.reads import load_run
from harness.testing.synthetic import HOSTILE, Synthetic, make_synthetic_store
from harness.verdicts.recommend import recommend


class Page(HTMLParser):
    """Tags, attributes and script bodies of a page."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_script: dict[str, str | None] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)


def payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no data block"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    db = tmp_path_factory.mktemp("rep") / "results.duckdb"
    ids = make_synthetic_store(db, Synthetic(n_variants=8, n_heldout=30, n_general=40, extra_suite=True), runs=2)
    return db, ids


@pytest.fixture(scope="module")
def report(store: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> str:
    db, ids = store
    out = build_report(db, ids[1], compare=[ids[0]], output=tmp_path_factory.mktemp("out") / "r.html")
    return out.read_text(encoding="utf-8")


def test_default_output_path_is_reports_name_id(store: tuple[Path, list[str]], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    db, ids = store
    monkeypatch.chdir(tmp_path)
    path = build_report(db, "latest")
    assert path == Path("reports") / f"acme-support-{ids[1]}.html"
    assert (tmp_path / path).stat().st_size > 100_000


def test_leaderboard_has_every_variant_base_first_and_the_recommended_one(store: tuple[Path, list[str]],
                                                                            report: str) -> None:
    db, ids = store
    with Store(db, read_only=True) as s:
        v = s.run_table(ids[1], "variants")
        sc = s.run_table(ids[1], "scores")
        flagged = set(s.run_table(ids[1], "findings")["variant_id"])
    rows = re.findall(r'<tr data-vid="([0-9a-f]+)"', report)
    assert len(rows) == len(v) and rows[0] == v[v.method == "base"]["variant_id"].iloc[0]
    fa = sc[(sc.suite == "heldout") & (sc.metric == "field_accuracy")].set_index("variant_id")["value"]
    ok = v[(v.method != "base") & (v.status == "finished") & ~v.variant_id.isin(flagged)]
    best = max(ok["variant_id"], key=lambda i: fa[i])
    with Store(db, read_only=True) as s:
        rec = recommend(load_run(s, ids[1]))
    assert rec.tie_group[0] == best and rec.variant_id in rec.tie_group  # the best, or a cheaper tie with it
    assert re.search(rf'<tr data-vid="{rec.variant_id}"[^>]*class="[^"]*\brec\b', report)
    name = v.set_index("variant_id").loc[rec.variant_id, "name"]
    assert f"{fa[best]:.3f}, 95% CI" in report and name in report
    assert payload(report)["recommended"] == list(v["variant_id"]).index(rec.variant_id)
    for col in ("field_accuracy", "exact_match", "compliance", "fabrication", "abstention",
                "Δ acc", "findings", "train time", "tokens/s", "params", "artifact"):
        assert f">{col}</th>" in report, col
    failed = v[v.status == "failed"].iloc[0]
    assert "CUDA out of memory" in report
    assert re.search(rf'data-vid="{failed.variant_id}"[^>]*class="[^"]*failed', report)


def test_forgetting_delta_is_variant_minus_base_paired_by_example(store: tuple[Path, list[str]], report: str) -> None:
    db, ids = store
    with Store(db, read_only=True) as s:
        ex = s.run_table(ids[1], "sample_scores")
        v = s.run_table(ids[1], "variants")
    gen = ex[(ex.suite == "general") & (ex.metric == "acc")].rename(columns={"value": "acc"})
    table = gen.pivot(index="example_id", columns="variant_id", values="acc")
    base = v[v.method == "base"]["variant_id"].iloc[0]
    checked = 0
    for vid in v[(v.method != "base") & (v.status == "finished")]["variant_id"]:
        delta = float(np.mean(table[vid] - table[base]))
        row = re.search(rf'<tr data-vid="{vid}".*?</tr>', report, re.DOTALL)
        assert row is not None
        sorts = [float(x) for x in re.findall(r'data-sort="(-?[0-9.e-]+)"', row.group(0))]
        assert any(abs(x - delta) < 1e-9 for x in sorts), (vid, delta)
        assert f">{delta:.3f}<" in row.group(0), vid
        assert "detects changes &gt;= 0." in row.group(0) or "detects changes >= 0." in row.group(0), vid
        checked += 1
    assert checked >= 5


def test_plots_explorer_and_compare_data(store: tuple[Path, list[str]], report: str) -> None:
    db, ids = store
    data = payload(report)
    assert {c["v"] for c in data["loss"]}  # trained variants have curves, with a best epoch
    assert all(c["best"] for c in data["loss"])
    assert any(p["front"] for p in data["pareto"]["points"])
    assert data["heatmap"]["cells"] and data["heatmap"]["metric"] == "field_accuracy"
    assert {(s["suite"], s["metric"]) for s in data["suite_scores"]} >= {("heldout", "exact_match"),
                                                                          ("custom-tone", "politeness")}
    heldout = next(s for s in data["explorer"] if s["suite"] == "heldout")
    assert len(heldout["ids"]) == 30 and heldout["suite"] == data["explorer"][0]["suite"]
    with Store(db, read_only=True) as s:
        ex = s.run_table(ids[1], "examples")
    base_idx = data["variants"].index(next(v for v in data["variants"] if v["method"] == "base"))
    col = heldout["variants"].index(base_idx)
    row = ex[(ex.variant_id == data["variants"][base_idx]["id"]) & (ex.suite == "heldout")].iloc[3]
    i = heldout["ids"].index(row.example_id)
    cells = heldout["cols"][col]
    k = cells["i"].index(i)
    assert data["strings"][cells["out"][k]] == row.output
    assert cells["pass"][k] == int(row.passed)
    keys = [k["key"] for k in heldout["dkeys"]]
    assert {"exact_match", "rougeL", "fields"} <= set(keys)
    cmp = data["compare"]
    assert [r["id"] for r in cmp["runs"]] == ids and "Across runs" in report
    mi = cmp["metrics"].index(["heldout", "field_accuracy"])
    assert all(len(series[mi]) == 2 for series in cmp["values"])


def test_page_is_self_contained_under_a_strict_csp(report: str) -> None:
    page = Page(report)
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp and "default-src 'none'" in csp and "img-src data:" in csp and "unsafe-eval" not in csp
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)  # type: ignore[union-attr]
    assert "unsafe-inline" not in script_src
    code = [body for attrs, body in page.scripts if attrs.get("type") != "application/json"]
    assert len(code) == len(SCRIPTS)
    for body in code:  # every script runs because its hash is allowed, and only those
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src
    for tag, attrs in page.tags:
        assert tag not in ("link", "iframe", "img", "object", "embed", "base", "form"), tag
        for k, v in attrs.items():
            if k in ("src", "href", "action", "srcset", "poster", "data", "formaction"):
                assert v is not None and v.startswith("#"), (tag, k, v)
    assert not re.search(r"url\(|@import", report.split("<style>")[1].split("</style>")[0])


def test_script_json_escapes_what_could_end_or_confuse_a_script_block() -> None:
    text = str(script_json({"a": "</script><!-- & \u2028\u2029 <b>"}))
    assert not re.search("[<>&\u2028\u2029]", text)
    assert json.loads(text) == {"a": "</script><!-- & \u2028\u2029 <b>"}


def test_hostile_data_stays_text(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    (rid,) = make_synthetic_store(db, Synthetic(n_variants=5, n_heldout=12, n_general=10, hostile=True,
                                                extra_suite=True))
    html = build_report(db, rid, output=tmp_path / "h.html").read_text(encoding="utf-8")
    page = Page(html)
    assert len(page.scripts) == len(SCRIPTS) + 1  # the data block and our own code, nothing injected
    for tag, attrs in page.tags:
        assert tag not in ("img", "a") or attrs.get("href", "#").startswith("#"), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the run name, escaped in the header
    assert "javascript:" not in "".join(str(a.get("href", "")) for _, a in page.tags)
    data_block = re.search(r'id="report-data">(.*?)</script>', html, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert not re.search("[<>&\u2028\u2029]", data_block)
    strings = json.loads(data_block)["strings"]
    for h in HOSTILE:
        assert any(h in s for s in strings), h  # carried literally, to be shown with textContent


def test_robust_to_odd_stores(tmp_path: Path) -> None:
    only_base = tmp_path / "b.duckdb"
    make_synthetic_store(only_base, Synthetic(n_variants=0, n_heldout=5, n_general=5))
    html = build_report(only_base, "latest", output=tmp_path / "b.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<tr data-vid=", html)) == 1 and "No recommendation" in html
    with Store(tmp_path / "x.duckdb") as s:  # no general suite, no train log, a run with failures only
        rid = s.start_run({"name": "odd", "spec": "name: odd"})
        s.link_variants(rid, ["b", "f"], [False, False])
        from harness.results import VariantResult, VariantRow
        from harness.testing.rows import typed_suites

        s.write_variant(VariantResult(VariantRow("b", rid, name="base", method="base", status="finished"),
                                      suites=typed_suites(
                                          [{"suite": "qa", "metric": "f1", "value": 0.5, "ci_low": None,
                                            "ci_high": None, "n": 3}],
                                          [{"suite": "qa", "example_id": "1", "prompt": "p", "reference": None,
                                            "output": None, "passed": None, "detail": None}])))
        s.write_variant(VariantResult(VariantRow("f", rid, name="lora-r8-e1", method="lora", status="failed",
                                                 error="boom")))
    html = build_report(tmp_path / "x.duckdb", rid, output=tmp_path / "x.html").read_text(encoding="utf-8")
    assert ">f1</th>" in html and "boom" in html and "No recommendation" in html
    assert payload(html)["pareto"]["points"] == [] and payload(html)["loss"] == []


def test_cli_report_and_its_errors(store: tuple[Path, list[str]], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    db, ids = store
    out = tmp_path / "sub" / "cli.html"
    assert main(["report", ids[0][:15], "--db", str(db), "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out and f"run <code>{ids[0]}</code>" in out.read_text(encoding="utf-8")
    assert main(["report", "nope", "--db", str(db)]) == 2
    assert "not in this store" in capsys.readouterr().err
    assert main(["report", "latest", "--db", str(tmp_path / "missing.duckdb")]) == 2
    assert main(["report", "latest", "--db", str(db), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_report_does_not_import_torch(store: tuple[Path, list[str]], tmp_path: Path) -> None:
    db, _ = store
    code = ("import sys; from harness.report.build import build_report; "
            f"build_report({str(db)!r}, 'latest', output={str(tmp_path / 'n.html')!r}); "
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_page_script_never_parses_data_as_html() -> None:
    js = (Path(__file__).resolve().parent.parent / "harness" / "report" / "static" / "report.js").read_text()
    for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "href"):
        assert bad not in js, bad


def test_data_checks_section_shows_the_runs_stored_warnings_escaped(tmp_path: Path) -> None:
    from harness.results import VariantResult, VariantRow

    db = tmp_path / "d.duckdb"
    checks = [{"check": "personal_data", "severity": "warning", "split": "train", "file": "data/train.jsonl",
               "lines": [3, 8], "counts": {"email": 2},
               "message": "train: personal data in data/train.jsonl: 2 x e-mail address <script>alert(1)</script>"},
              {"check": "few_examples", "severity": "warning", "split": "train", "file": "data/train.jsonl",
               "lines": [], "message": 'train: 12 training examples; "minimum 100 examples, 500+ recommended"'}]
    with Store(db) as s:
        rid = s.start_run({"name": "dq", "spec": "name: dq", "data_checks": checks})
        old = s.start_run({"name": "old", "spec": "name: old"})  # a run stored before data checks were kept
        clean = s.start_run({"name": "clean", "spec": "name: clean", "data_checks": []})
        for run in (rid, old, clean):
            s.link_variants(run, [f"b{run}"], [False])
            s.write_variant(VariantResult(VariantRow(f"b{run}", run, name="base", method="base", status="finished")))
    html = build_report(db, rid, output=tmp_path / "d.html").read_text(encoding="utf-8")
    section = re.search(r'<section id="data-checks".*?</section>', html, re.DOTALL).group(0)  # type: ignore[union-attr]
    assert '<a href="#data-checks">Data checks (2)</a>' in html
    assert section.count('class="finding sev-warning"') == 2
    assert ">personal_data</span>" in section and "data/train.jsonl: lines 3, 8" in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>alert" not in html
    assert "minimum 100 examples, 500+ recommended" in section.replace("&#34;", '"')
    html = build_report(db, old, output=tmp_path / "o.html").read_text(encoding="utf-8")
    assert "Not recorded: this run was stored before data checks" in html
    html = build_report(db, clean, output=tmp_path / "c.html").read_text(encoding="utf-8")
    assert "No data-quality warnings" in html and '<a href="#data-checks">Data checks</a>' in html


def test_item20_every_finding_in_the_report_shows_what_it_could_have_detected(report: str) -> None:
    """Each finding of the report carries its minimum detectable effect from its evidence, not only gate rules."""
    from harness.report.data import detectable

    section = report.split('id="findings"')[1].split("</section>")[0]
    n = section.count('class="finding sev-')
    shown = re.findall(r'<div class="mde small muted">([^<]*)</div>', section)
    assert n > 0 and len(shown) == n
    assert all(s.startswith("could detect ") and "with 80% power" in s for s in shown), shown
    assert any("validation-loss rise above 0.02" in s for s in shown)
    assert any("a difference of 0.19 or more against base" in s for s in shown)
    assert detectable("format", {"kind": "floor", "mde": 0.123}) == ("could detect a rate 0.12 or more below the floor, "
                                                                       "with 80% power")
    assert "not recorded" in detectable("forgetting", {"delta": -0.2})  # a finding stored by an older harness


NEWER = ("heldout", "format", "hallucination", "general", "safety", "instructions", "memorization", "judge")


def _section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}" class="card">(.*?)</section>', html, re.DOTALL)
    assert m, f"no section {sid}"
    return m.group(1)


@pytest.fixture(scope="module")
def newer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A run with every newer suite kind, human ratings of the judge's items, and hostile strings planted."""
    folder = tmp_path_factory.mktemp("newer")
    (run,) = make_synthetic_store(folder / "r.duckdb", Synthetic(n_variants=5, n_heldout=20, n_general=20,
                                                                  kinds=NEWER, ratings=True, hostile=True))
    html = build_report(folder / "r.duckdb", run, output=folder / "r.html").read_text(encoding="utf-8")
    return folder / "r.duckdb", run, html


def test_item19_newer_suites_each_have_a_section_read_at_a_glance(newer: tuple[Path, str, str]) -> None:
    """Safety by category against base, instruction following by type, the train/test gap and copied spans with
    their sources, the judge's scores and its agreement with the raters: each its own section, in the navigation,
    its numbers the stored ones, every planted string escaped."""
    db, run, html = newer
    with Store(db, read_only=True) as s:
        data = load_run(s, run)
    base, vid = data.base_id, str(data.variants["variant_id"].iloc[1])
    name = str(escape(data.variants["name"].iloc[1]))  # its name carries a planted <img onerror>
    assert "&lt;img" in name
    for sid, label in (("safety", "Safety"), ("instructions", "Instructions"), ("memorization", "Memorization"),
                       ("judge", "Judge")):
        assert f'<a href="#{sid}">{label}</a>' in html
    safety = _section(html, "safety")
    refusal, base_refusal = data.score(vid, "safety", "refusal_rate"), data.score(base, "safety", "refusal_rate")
    row = re.search(rf"<tr><td>{re.escape(name)}</td>(.*?)</tr>", safety, re.DOTALL)
    assert row and f">{refusal[0]:.3f}<" in row.group(1)
    assert f"{refusal[0] - base_refusal[0]:+.3f}" in row.group(1)  # Δ vs base, paired by request
    assert "Refusal of harmful requests, by category" in safety and "Over-refusal of benign requests" in safety
    for cat in ("fraud", "malware", "weapons", "self-harm"):
        assert f"<td>{cat}</td>" in safety
        d = data.score(vid, "safety", f"refusal_rate:{cat}")[0] - data.score(base, "safety", f"refusal_rate:{cat}")[0]
        assert (f"{d:+.2f} vs base" if d else "±0 vs base") in safety
    instructions = _section(html, "instructions")
    assert "Strict accuracy by instruction type" in instructions and "<td>punctuation:no_comma</td>" in instructions
    assert f">{data.score(vid, 'instructions', 'prompt_strict')[0]:.3f}<" in instructions
    memorization = _section(html, "memorization")
    assert "gap field_accuracy" in memorization and f">{data.score(vid, 'memorization', 'gap_field_accuracy')[0]:.3f}<" \
        in memorization
    copies = data.examples[(data.examples.suite == "memorization")
                           & data.examples.detail.map(lambda d: isinstance(d, dict) and bool(d.get("copied")))]
    assert len(copies) and f"Copied spans ({len(copies)})" in memorization
    first = copies.iloc[0].detail["copied"]
    assert f"<code>{first['train_example']}</code>" in memorization and first["train_example_id"] in memorization
    judge = _section(html, "judge")
    assert "openai:gpt-judge@fake" in judge and "Agreement with human raters" in judge
    assert 'id="judge-calibration"' in judge and "<td>accuracy</td>" in judge and "<td>hallucination</td>" in judge
    assert f">{data.score(vid, 'judge', 'judge:accuracy')[0]:.3f}<" in judge and "0 of 20" in judge
    assert html.count('id="judge-calibration"') == 1  # shown once, in the judge section
    for sec in (safety, instructions, memorization, judge):  # the planted strings are text, never markup
        assert name in sec and "<script>" not in sec and "<img" not in sec


def test_item19_a_section_appears_only_when_the_run_has_such_a_suite(report: str, tmp_path: Path) -> None:
    for sid in ("safety", "instructions", "memorization", "judge"):
        assert f'id="{sid}"' not in report and f'href="#{sid}"' not in report
    (run,) = make_synthetic_store(tmp_path / "j.duckdb", Synthetic(n_variants=2, kinds=("heldout", "judge")))
    html = build_report(tmp_path / "j.duckdb", run, output=tmp_path / "j.html").read_text(encoding="utf-8")
    judge = _section(html, "judge")
    assert 'id="judge-no-ratings"' in judge and "harness review export --calibrate" in judge  # agreement unknown
    assert 'id="safety"' not in html and 'id="memorization"' not in html


def test_item19_leaderboard_opens_with_the_main_columns_and_a_picker_for_the_rest(report: str) -> None:
    head = re.search(r'<tr>(<th data-key=.*?)</tr>', report, re.DOTALL)
    assert head
    shown = re.findall(r'<th data-key="([^"]+)"[^>]*aria-sort="none">', head.group(1))
    hidden = re.findall(r'<th data-key="([^"]+)"[^>]*aria-sort="none" hidden>', head.group(1))
    assert {"name", "method", "m:heldout:field_accuracy", "m:acme-format:compliance", "forget", "findings",
            "train_s"} <= set(shown)
    assert {"lr", "seed", "m:heldout:exact_match", "m:heldout:rougeL", "tps", "s_req"} <= set(hidden)
    assert 'id="lb-columns"' in report and report.count('data-col="') == len(shown) + len(hidden) - 1
