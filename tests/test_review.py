"""Blind rating sheets: export (blind, shuffled per item with a seed, escaped, CSP) and import (validated,
un-blinded through the store, idempotent), from a synthetic store."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_report import Page

import harness.cli
from harness.store.db import Store
from harness.store.review import load_sheet
from harness.testing.synthetic import HOSTILE, Synthetic, make_synthetic_store


def _store(folder: Path, **kw: Any) -> Path:
    db = folder / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=3, n_heldout=12, n_format=4, n_hallucination=4, n_general=6,
                                       failed=False, **kw))
    return db


def _export(db: Path, out: Path, *args: str) -> int:
    return harness.cli.main(["review", "export", "--db", str(db), "-o", str(out), *args])


def _sheet(db: Path, sheet_id: str | None = None) -> dict[str, Any]:
    with Store(db, read_only=True) as s:
        sid = sheet_id or str(s.query("SELECT sheet_id FROM review_sheets ORDER BY created_at DESC").iloc[0, 0])
        sheet = load_sheet(s, sid)
    assert sheet is not None
    return sheet


def _ratings(db: Path) -> pd.DataFrame:
    with Store(db, read_only=True) as s:
        return s.query("SELECT * FROM ratings ORDER BY rater, example_id, variant_id, criterion")


def _visible_text(html: str) -> str:
    body = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", html, flags=re.DOTALL)
    return re.sub(r"<meta[^>]*>", " ", body)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _store(tmp_path)


def test_export_hides_every_variant_and_shuffles_each_item_with_a_seed(db: Path, tmp_path: Path) -> None:
    assert _export(db, tmp_path / "out", "--sample", "10", "--raters", "alice", "bob") == 0
    files = sorted((tmp_path / "out").iterdir())
    assert [f.suffix for f in files] == [".csv", ".html", ".csv", ".html"] and "alice" in files[0].name
    sheet = _sheet(db)
    with Store(db, read_only=True) as s:
        variants = s.run_table(sheet["run_id"], "variants")
        examples = s.run_table(sheet["run_id"], "examples")
    assert len(sheet["variant_ids"]) == 4 and len(sheet["items"]) == 10  # default: base + recommended + ties
    for f in files:
        text = f.read_text(encoding="utf-8-sig")
        for v in variants.to_dict("records"):
            secret = [v["variant_id"], v["base_model"], v["artifact"], "smollm2"]
            secret += [v["name"]] if v["name"] != "base" else []
            assert not [x for x in secret if isinstance(x, str) and x and x in text], f.name
        assert not re.search(r"\bbase\b", _visible_text(text)), f.name
    # the outputs under each label are the stored outputs of the variant the store maps that label to
    heldout = examples[examples["suite"] == "heldout"].set_index(["variant_id", "example_id"])["output"]
    with files[0].open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and {r["rater"] for r in rows} == {"alice"}
    for r in rows:
        assert r["output"] == heldout[(sheet["items"][r["example_id"]][r["label"]], r["example_id"])]
    orders = {tuple(labels[k] for k in sorted(labels)) for labels in sheet["items"].values()}
    assert len(orders) > 3  # shuffled per item, not one order for the whole sheet
    assert _export(db, tmp_path / "again", "--sample", "10") == 0  # same seed: the same sheet, the same mapping
    assert _sheet(db, sheet["sheet_id"])["items"] == sheet["items"]
    assert _export(db, tmp_path / "seed1", "--sample", "12", "--seed", "1") == 0
    other = _sheet(db)
    assert other["sheet_id"] != sheet["sheet_id"]
    assert any(other["items"][e] != sheet["items"][e] for e in sheet["items"])


def test_sheet_escapes_hostile_text_and_runs_under_a_strict_csp(tmp_path: Path) -> None:
    db = _store(tmp_path, hostile=True)
    assert _export(db, tmp_path / "out", "--sample", "12") == 0
    html = next((tmp_path / "out").glob("*.html")).read_text(encoding="utf-8")
    page = Page(html)
    assert len(page.scripts) == 2  # the data block and the sheet's own script, nothing injected
    assert page.scripts[0][0].get("type") == "application/json"
    for tag, attrs in page.tags:
        assert tag not in ("img", "a", "iframe", "object"), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp and csp.startswith("default-src 'none'; script-src 'sha256-") and "unsafe-inline" not in csp.split(";")[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    data = re.search(r'id="sheet-data">(.*?)</script>', html, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert not re.search("[<>&\u2028\u2029]", data)
    labels = json.loads(data)["labels"]
    for h in HOSTILE:
        assert any(h in k for k in labels), h  # example ids carried literally, to be matched on import
    assert "chart" not in html.lower()  # none of the report's vendored libraries on the sheet


def test_csv_cells_that_look_like_formulas_stay_text() -> None:
    from harness.report.sheet import render_csv
    from harness.report.sheet_plan import Item, Output, Sheet
    from harness.spec.review import DEFAULT_RUBRIC

    item = Item(1, "-7", "=HYPERLINK(\"http://x\", \"y\")", "+1", (Output("A", "v1", "@SUM(A1)"),))
    sheet = Sheet("abc", "run", "n", "heldout", 0, 1, "none", True, list(DEFAULT_RUBRIC), ["v1"], [item])
    rows = list(csv.reader(render_csv(sheet).splitlines()))
    assert rows[1][3:8] == ["'-7", "A", "'=HYPERLINK(\"http://x\", \"y\")", "'+1", "'@SUM(A1)"]


def _filled(sheet: dict[str, Any], rater: str, score: Any, items: list[str] | None = None) -> dict[str, Any]:
    """What a sheet saves: per item and label the rubric's values (score(example, label) -> accuracy)."""
    out = []
    for eid in items or list(sheet["items"]):
        labels = sorted(sheet["items"][eid])
        out.append({"example_id": eid,
                    "scores": {lab: {"accuracy": score(eid, lab), "format": 4, "tone": 3, "completeness": 5,
                                     "hallucination": "yes" if lab == "A" else "no"} for lab in labels},
                    "comments": {"B": "too long"}, "preferred": labels[-1], "rated_at": "2026-02-03T10:00:00.000Z"})
    return {"format": "finetune-harness-ratings", "format_version": 1, "sheet_id": sheet["sheet_id"],
            "rater": rater, "saved_at": "2026-02-03T10:05:00Z", "items": out}


def test_import_unblinds_stores_once_and_refuses_tampered_files(db: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _export(db, tmp_path / "out", "--sample", "6") == 0
    sheet = _sheet(db)
    good = tmp_path / "alice.json"
    good.write_text(json.dumps(_filled(sheet, "alice", lambda e, lab: "ABCD".index(lab) + 1)), encoding="utf-8")
    assert harness.cli.main(["review", "import", str(good), "--db", str(db)]) == 0
    stored = _ratings(db)
    n_labels = len(sheet["variant_ids"])
    # per item and output: 5 criteria + 1 preference row
    assert len(stored) == 6 * n_labels * 6
    for r in stored.to_dict("records"):
        assert r["variant_id"] == sheet["items"][r["example_id"]][r["label"]]  # un-blinded through the store
        if r["criterion"] == "accuracy":
            assert r["value"] == "ABCD".index(r["label"]) + 1
        if r["criterion"] == "hallucination":
            assert r["value"] == (1.0 if r["label"] == "A" else 0.0)
        if r["criterion"] == "preferred":
            assert r["value"] == (1.0 if r["label"] == "ABCD"[n_labels - 1] else 0.0)
        assert (r["comment"] if isinstance(r["comment"], str) else None) == ("too long" if r["label"] == "B" else None)
        assert r["rated_at"] == pd.Timestamp("2026-02-03 10:00:00")
    capsys.readouterr()
    assert harness.cli.main(["review", "import", str(good), "--db", str(db)]) == 0  # the same file again
    assert "0 new, 0 changed" in capsys.readouterr().out
    pd.testing.assert_frame_equal(_ratings(db), stored)
    eid = next(iter(sheet["items"]))
    bad = _filled(sheet, "mallory", lambda e, lab: 9 if e == eid else 3)
    bad["items"].append({**bad["items"][0], "example_id": "not-on-the-sheet"})
    bad["items"][1]["scores"]["Z"] = {"accuracy": 3}
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(bad), encoding="utf-8")
    assert harness.cli.main(["review", "import", str(good), str(tampered), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"{tampered}: item {eid}: output A: accuracy = 9 is out of range (a whole number from 1 to 5)" in err
    assert f"{tampered}: item not-on-the-sheet: no item 'not-on-the-sheet' on sheet {sheet['sheet_id']}" in err
    assert "no output labelled 'Z'" in err and "nothing was stored" in err
    pd.testing.assert_frame_equal(_ratings(db), stored)  # all or nothing
    unknown = tmp_path / "other.json"
    unknown.write_text(json.dumps({**_filled(sheet, "bob", lambda e, lab: 3), "sheet_id": "feedfacecafe"}))
    assert harness.cli.main(["review", "import", str(unknown), "--db", str(db)]) == 2
    assert f"{unknown}: unknown sheet 'feedfacecafe'" in capsys.readouterr().err


def test_a_later_file_updates_the_items_it_rates(db: Path, tmp_path: Path) -> None:
    assert _export(db, tmp_path / "out", "--sample", "4", "--variants", "lora-r4-e1-lr1e-4-s0") == 0
    sheet = _sheet(db)
    assert len(sheet["variant_ids"]) == 2  # base is included by default
    f = tmp_path / "r.json"
    first = _filled(sheet, "ann", lambda e, lab: 2)
    f.write_text(json.dumps(first))
    harness.cli.main(["review", "import", str(f), "--db", str(db)])
    eid = first["items"][0]["example_id"]
    second = _filled(sheet, "ann", lambda e, lab: 5, items=[eid])
    del second["items"][0]["scores"]["A"]["tone"]  # cleared on the sheet
    f.write_text(json.dumps(second))
    harness.cli.main(["review", "import", str(f), "--db", str(db)])
    r = _ratings(db)
    acc = r[r["criterion"] == "accuracy"]
    assert set(acc[acc["example_id"] == eid]["value"]) == {5.0} and set(acc[acc["example_id"] != eid]["value"]) == {2.0}
    assert len(r[(r["example_id"] == eid) & (r["criterion"] == "tone")]) == 1


def test_filled_csv_imports_like_the_json(db: Path, tmp_path: Path) -> None:
    assert _export(db, tmp_path / "out", "--sample", "3", "--raters", "carol", "--no-reference") == 0
    sheet = _sheet(db)
    path = next((tmp_path / "out").glob("*.csv"))
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert "reference" not in header and "accuracy [1-5]" in header and "hallucination [yes/no]" in header
    col = {h: i for i, h in enumerate(header)}
    for r in rows[1:]:
        r[col["accuracy [1-5]"]] = str("ABCD".index(r[col["label"]]) + 1)
        r[col["hallucination [yes/no]"]] = "Yes" if r[col["label"]] == "A" else "no"
        r[col["preferred"]] = "x" if r[col["label"]] == "B" else ""
        r[col["comment"]] = "=cmd" if r[col["label"]] == "A" else ""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    assert harness.cli.main(["review", "import", str(path), "--db", str(db)]) == 0
    stored = _ratings(db)
    assert set(stored["rater"]) == {"carol"} and set(stored["criterion"]) == {"accuracy", "hallucination", "preferred"}
    for r in stored.to_dict("records"):
        assert r["variant_id"] == sheet["items"][r["example_id"]][r["label"]]
        expect = {"accuracy": "ABCD".index(r["label"]) + 1, "hallucination": float(r["label"] == "A"),
                  "preferred": float(r["label"] == "B")}[r["criterion"]]
        assert r["value"] == expect
    from harness.commands import review_import
    from harness.errors import HarnessInputError

    rows[1][col["accuracy [1-5]"]] = "4.5"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(HarnessInputError) as info:
        review_import(str(db), [str(path)])
    assert f"{path}: line 2 (item {rows[1][col['example_id']]}): output A: accuracy = '4.5' is out of range" in str(
        info.value)
    rows[3][col["preferred"]] = "x"  # a second preferred output of the first item
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(HarnessInputError) as info:
        review_import(str(db), [str(path)])
    assert f"{path}: line 4 (item {rows[3][col['example_id']]}): more than one output marked preferred" in str(
        info.value)


def test_disagreement_picks_the_items_whose_outputs_differ_most(db: Path, tmp_path: Path) -> None:
    from harness.report.sheet_plan import disagreement

    assert disagreement(["a b c", "a b c"]) == 0.0
    assert disagreement(["a b c d", "w x y z"]) == 1.0
    assert disagreement(["a b c d", "a b c e", "a b c d"]) == pytest.approx(1 - (0.75 + 1 + 0.75) / 3)
    assert _export(db, tmp_path / "d", "--sample", "3", "--stratify", "disagreement") == 0
    sheet = _sheet(db)
    with Store(db, read_only=True) as s:
        ex = s.run_table(sheet["run_id"], "examples")
    ex = ex[(ex["suite"] == "heldout") & ex["variant_id"].isin(sheet["variant_ids"])]
    score = {e: disagreement(list(g.set_index("variant_id").loc[sheet["variant_ids"], "output"]))
             for e, g in ex.groupby("example_id")}
    top = sorted(score.values(), reverse=True)[:3]
    assert sorted((score[e] for e in sheet["items"]), reverse=True) == top


def test_review_block_and_rating_rules_are_validated_with_the_spec(tmp_path: Path) -> None:
    from harness.errors import HarnessInputError
    from harness.spec.review import DEFAULT_RUBRIC, review_from_text
    from harness.spec.schema import load_spec

    base = "name: t\nmodel: tiny-random-llama\ndata: {train: a.jsonl, test: b.jsonl}\n"
    ok = tmp_path / "ok.yaml"
    ok.write_text(base + "review:\n  rubric: [accuracy, {name: hallucination}, {name: politeness, scale: 1-7}]\n"
                  "  sample: 12\ngate:\n  ratings: {min: {accuracy: 3.5}, max: {hallucination: 0.2}}\n")
    spec = load_spec(ok)
    review = review_from_text(spec.source_text, "x")
    assert [c.name for c in review.rubric] == ["accuracy", "hallucination", "politeness"]
    assert review.rubric[1] == DEFAULT_RUBRIC[4] and review.rubric[2].values == list(range(1, 8))
    assert review.sample == 12 and review_from_text(None, "x").rubric == list(DEFAULT_RUBRIC)
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "review:\n  rubric: [acuracy, {name: tone, scale: 1-50}, {name: preferred}]\n  seeds: 1\n"
                   "gate:\n  ratings: {min: {accuracy: 3}, maximum: {x: 1}}\n")
    with pytest.raises(HarnessInputError) as info:
        load_spec(bad)
    text = str(info.value)
    assert "key 'review.rubric': 'acuracy' is not a default criterion. Did you mean 'accuracy'?" in text
    assert "key 'review.seeds': unknown key. Did you mean 'seed'?" in text
    assert "key 'gate.ratings.maximum': unknown key. Did you mean 'max'?" in text
    bad.write_text(base + "review:\n  rubric: [{name: tone, scale: 1-50}, {name: preferred}]\n")
    with pytest.raises(HarnessInputError) as info:
        load_spec(bad)
    assert "review.rubric.0.scale" in str(info.value) and "'preferred' is reserved" in str(info.value)
    bad.write_text(base + "review: {rubric: [accuracy]}\ngate:\n  ratings: {max: {halucination: 0.2}}\n")
    with pytest.raises(HarnessInputError) as info:
        load_spec(bad)
    assert "no criterion 'halucination' in the review rubric" in str(info.value)


def test_report_shows_human_ratings_only_when_the_run_has_them(db: Path, tmp_path: Path) -> None:
    from harness.report.build import build_report

    before = build_report(db, "latest", output=tmp_path / "a.html").read_text(encoding="utf-8")
    assert 'id="ratings"' not in before and "Human ratings" not in before
    assert _export(db, tmp_path / "out", "--sample", "5", "--variants", "lora-r4-e1-lr1e-4-s0") == 0
    sheet = _sheet(db)
    for rater, bump in (("<script>alert(1)</script>", 0), ("bo", 1)):
        f = tmp_path / f"{bump}.json"
        # the base output always gets 2 (+1 for the second rater), the fine-tuned one 4 (+1)
        f.write_text(json.dumps(_filled(sheet, rater, lambda e, lab, bump=bump: (
            2 if sheet["items"][e][lab] == sheet["variant_ids"][0] else 4) + bump)))
        assert harness.cli.main(["review", "import", str(f), "--db", str(db)]) == 0
    html = build_report(db, "latest", output=tmp_path / "b.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="ratings"'):html.index('<section id="scores"')]
    assert '<a href="#ratings">Human ratings</a>' in html
    assert "2 raters (&lt;script&gt;alert(1)&lt;/script&gt;, bo) on 5 items of 1 blind sheet" in section
    rows = re.findall(r"<tr[^>]*><td>(.*?)</tr>", section.split('id="ratings-means"')[1].split("</table>")[0])
    assert rows[0].startswith("base") and ">2.50<" in rows[0] and "lora-r4-e1-lr1e-4-s0" in rows[1]
    assert ">4.50<" in rows[1] and ">+2.00<" in rows[1]  # accuracy: mean and the paired delta against base
    assert 'id="ratings-agreement"' in section and ">accuracy</td><td>ordinal</td>" in section


def test_a_schema_3_store_reads_without_review_tables_and_gains_them_when_opened_for_writing(tmp_path: Path) -> None:
    import duckdb

    from harness.report.build import build_report
    from harness.store.db import SCHEMA_VERSION
    from harness.store.review import ratings_of, sheet_ids

    db = _store(tmp_path)
    con = duckdb.connect(str(db))
    for table in ("review_sheets", "review_items", "ratings"):
        con.execute(f"DROP TABLE {table}")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.close()
    with Store(db, read_only=True) as s:
        assert ratings_of(s, ["anything"]).empty and sheet_ids(s) == []
    assert 'id="ratings"' not in build_report(db, "latest", output=tmp_path / "r.html").read_text(encoding="utf-8")
    assert SCHEMA_VERSION == 5
    with Store(db) as s:
        assert s.query("SELECT value FROM meta WHERE key = 'schema_version'").iloc[0, 0] == "5"
        assert list(s.query("SELECT * FROM ratings").columns) == ["sheet_id", "rater", "example_id", "variant_id",
                                                                   "criterion", "value", "comment", "rated_at", "label"]
