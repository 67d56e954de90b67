"""The report of a large sweep stays bounded: its explorer embeds a stated, useful sample; `--examples all` embeds
every row; aggregates still read every row."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.build import build_report
from harness.report.sample import parse_limit
from harness.scorers import metric_info
from harness.store.db import Store
from harness.store.reads import load_run
from harness.testing.synthetic import Synthetic, make_synthetic_store
from harness.verdicts.recommend import recommend

LIMIT = 400  # example rows: the sweep below has 21 variants x 160 examples = 3,360


def payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no data block"
    return json.loads(m.group(1))


def embedded(data: dict) -> set[tuple[str, str, str]]:
    """(variant_id, suite, example_id) of every example row the page embeds."""
    ids = [v["id"] for v in data["variants"]]
    return {(ids[vi], s["suite"], s["ids"][i]) for s in data["explorer"]
            for vi, c in zip(s["variants"], s["cols"], strict=True) for i in c["i"]}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("big") / "results.duckdb"
    (run_id,) = make_synthetic_store(db, Synthetic(n_variants=20, n_heldout=60, n_format=30, n_hallucination=20,
                                                   n_general=50))
    return db, run_id


@pytest.fixture(scope="module")
def full(sweep: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The report built by `harness report --examples all`: its page and what the command wrote to stderr."""
    db, run_id = sweep
    out, err = tmp_path_factory.mktemp("all") / "all.html", io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["report", run_id, "--db", str(db), "--examples", "all", "-o", str(out)]) == 0
    return out.read_text(), err.getvalue()


@pytest.fixture(scope="module")
def sampled(sweep: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    db, run_id = sweep
    return build_report(db, run_id, output=tmp_path_factory.mktemp("s") / "r.html", examples=LIMIT).read_text()


def test_sample_stays_within_its_budget_and_says_so(sweep: tuple[Path, str], sampled: str) -> None:
    db, run_id = sweep
    with Store(db, read_only=True) as s:
        total = len(s.run_table(run_id, "examples"))
    rows = embedded(payload(sampled))
    assert total > 5 * LIMIT and 0.5 * LIMIT < len(rows) <= LIMIT
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", sampled))
    assert f"A sample: {len(rows):,} of {total:,} example rows" in text
    assert f"harness report {run_id} --examples all" in text
    assert f"WHERE rv.run_id = &#39;{run_id}&#39;" in sampled or f"WHERE rv.run_id = '{run_id}'" in text
    with Store(db, read_only=True) as s:  # the SQL the page gives returns every row
        sql = re.search(r'<pre class="sql">(.*?)</pre>', sampled, re.DOTALL).group(1).replace("&#39;", "'")
        assert len(s.query(sql)) == total


def test_sample_holds_recommended_vs_base_and_every_failure_kind(sweep: tuple[Path, str], sampled: str) -> None:
    db, run_id = sweep
    data = payload(sampled)
    rows = embedded(data)
    with Store(db, read_only=True) as s:
        run = load_run(s, run_id)
        ex = s.run_table(run_id, "examples")
        samples = s.run_table(run_id, "sample_scores")
    rec, base = recommend(run).variant_id, run.base_id
    assert rec and base
    paired = {(su, e) for v, su, e in rows if v == rec} & {(su, e) for v, su, e in rows if v == base}
    assert len(paired) >= LIMIT // 8  # the recommended variant and base side by side on many examples
    shown_ex = {(su, e) for _, su, e in rows}
    # every failure kind the run has appears at least once: a row not passed per suite, and each 0/1 metric's bad value
    for suite in set(ex.loc[ex.passed == False, "suite"]):  # noqa: E712
        assert any((v, suite, e) in rows for v, e in
                   ex.loc[(ex.suite == suite) & (ex.passed == False), ["variant_id", "example_id"]].itertuples(  # noqa: E712
                       index=False)), suite
    kinds = 0
    for (suite, metric), g in samples.groupby(["suite", "metric"]):
        if not g["value"].isin([0.0, 1.0]).all():
            continue
        higher = metric_info(run.kinds.get(suite), metric).higher_is_better
        bad = g[g["value"] == (0.0 if higher else 1.0)]
        if higher is None or bad.empty:
            continue
        kinds += 1
        assert any((v, suite, e) in rows for v, e in bad[["variant_id", "example_id"]].itertuples(index=False)), \
            (suite, metric)
    assert kinds >= 5
    # where variants disagree most: an example with every variant's row
    heldout = next(s for s in data["explorer"] if s["suite"] == "heldout")
    per_example = {}
    for c in heldout["cols"]:
        for i in c["i"]:
            per_example[i] = per_example.get(i, 0) + 1
    assert max(per_example.values()) == len(heldout["variants"]) >= 15
    strings = data["strings"]
    whys = {strings[w] for s in data["explorer"] for w in s["why"] or [] if w >= 0}
    assert any(w.startswith("failure kind") for w in whys) and "variants disagree" in whys
    assert any(" vs base" in w for w in whys) and all(s["total"] >= len(s["ids"]) for s in data["explorer"])
    assert len(shown_ex) < len(set(zip(ex.suite, ex.example_id, strict=True)))


def test_aggregates_use_every_row_when_the_explorer_samples(sampled: str, full: tuple[str, str]) -> None:
    a, b = payload(sampled), payload(full[0])
    for key in ("variants", "recommended", "rank", "pareto", "heatmap", "suite_scores", "loss"):
        assert a[key] == b[key], key
    lb = re.compile(r'<table[^>]*id="lb-table".*?</table>', re.DOTALL)
    assert lb.search(sampled).group(0) == lb.search(full[0]).group(0)  # leaderboard, forgetting deltas included


def test_examples_all_embeds_every_row_and_warns(sweep: tuple[Path, str], full: tuple[str, str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db, run_id = sweep
    html, err = full
    assert "--examples all embedded every example row" in err
    with Store(db, read_only=True) as s:
        ex = s.run_table(run_id, "examples")
    assert embedded(payload(html)) == set(zip(ex.variant_id, ex.suite, ex.example_id, strict=True))
    assert "A sample:" not in html and "Every example row of the run is here" in html
    assert main(["report", run_id, "--db", str(db), "--examples", "lots", "-o", str(tmp_path / "x.html")]) == 2
    assert "--examples lots" in capsys.readouterr().err


def test_parse_limit() -> None:
    assert parse_limit(None) == 10_000 and parse_limit("all") is None and parse_limit("2,000") == 2000
    with pytest.raises(ValueError, match="or 'all'"):
        parse_limit("0")


def test_text_budget_caps_the_sample(sweep: tuple[Path, str], sampled: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.report import sample

    db, run_id = sweep
    monkeypatch.setattr(sample, "TEXT_BUDGET", 30_000)
    small = build_report(db, run_id, output=tmp_path / "small.html", examples=LIMIT).read_text()
    rows = embedded(payload(small))
    assert 10 < len(rows) < len(embedded(payload(sampled))) / 2 and len(small) < len(sampled)
    assert f"A sample: {len(rows):,} of" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", small))
    # fewer rows than the limit, but more text than the budget: still a sample
    roomy = build_report(db, run_id, output=tmp_path / "roomy.html", examples=100_000).read_text()
    assert "A sample:" in roomy and len(embedded(payload(roomy))) < len(embedded(payload(sampled)))


def test_a_sample_of_non_ascii_and_hostile_text_builds(tmp_path: Path) -> None:
    (run_id,) = make_synthetic_store(tmp_path / "h.duckdb", Synthetic(n_variants=3, n_heldout=12, n_general=12,
                                                                      hostile=True))
    html = build_report(tmp_path / "h.duckdb", run_id, output=tmp_path / "h.html", examples=40).read_text()
    assert "A sample:" in html and "<script>alert(1)</script>" not in html.split('id="report-data"')[1]
