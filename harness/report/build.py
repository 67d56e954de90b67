"""The HTML comparison report: one self-contained, offline file built from the DuckDB store alone.

Safety: every value from the store is untrusted. The template autoescapes; data for the page's scripts is
JSON in a <script type="application/json"> block with <, >, &, U+2028 and U+2029 escaped; the page's own
scripts run under a Content-Security-Policy that allows only their hashes, so nothing injected can run.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import json
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TypedDict

import jinja2
from markupsafe import Markup

from harness import __version__
from harness.errors import HarnessInputError
from harness.output_file import write_output
from harness.report.data import (
    Column,
    Header,
    LeaderRow,
    data_checks,
    forgetting_cells,
    forgetting_mde,
    header,
    leaderboard,
    primary_metric,
)
from harness.report.findings_view import FindingGroup, findings_by_variant
from harness.report.ratings import CalibrationRow, judge_calibration, ratings_view, run_rating_summary
from harness.report.sample import DEFAULT_EXAMPLES, ExampleSample, choose
from harness.report.sections import View, sections, suites_of
from harness.report.views import (
    ScoreTable,
    Strings,
    compare,
    explorer,
    heatmap,
    loss_curves,
    pareto,
    score_tables,
    suite_scores,
    variant_list,
)
from harness.scores import JSONDict
from harness.store import explore
from harness.store.db import Store
from harness.store.reads import RunData, load_run
from harness.verdicts.recommend import PromptVerdict, forgetting, prompt_vs_finetuning, recommend

PACKAGE = "harness.report"  # templates/ and static/ ship inside it as package data
# Vendored plotting library (Chart.js + two MIT plugins, about 230 KB in all), then the page's own code.
SCRIPTS = ("chart.umd.min.js", "chartjs-chart-matrix.min.js", "chartjs-chart-error-bars.min.js", "report.js")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def script_json(obj: object) -> Markup:
    """JSON that is safe inside <script type="application/json">: no `</script>`, `<!--` or line separators."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(_JSON_ESCAPE_RE.sub(lambda m: _JSON_ESCAPES[m.group(0)], text))


@cache
def static_text(name: str) -> str:
    """A file vendored in harness/report/static, checked so that it can be inlined in a <script>."""
    text = (importlib.resources.files(PACKAGE) / "static" / name).read_text(encoding="utf-8")
    if name.endswith(".js") and re.search(r"</script|<!--", text, re.IGNORECASE):
        raise RuntimeError(f"harness/report/static/{name} holds '</script' or '<!--' and cannot be inlined")
    return text


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(scripts: list[str]) -> str:
    """Nothing from the network; inline scripts only when their hash is listed; inline styles; data: images."""
    hashes = " ".join(_sha256(s) for s in scripts)
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja environment of every page the report module writes: autoescaping, strict undefined."""
    return jinja2.Environment(loader=jinja2.PackageLoader(PACKAGE, "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def default_output(run_name: str, run_id: str) -> Path:
    """reports/<run name>-<run id>.html, the name reduced to safe filename characters."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name or "run").strip("-.") or "run"
    safe_id = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id)
    return Path("reports") / f"{name[:80]}-{safe_id}.html"


class ColumnGroup(TypedDict):
    """A group of leaderboard columns: its label, how many columns it spans and how many show before any is picked."""

    label: str
    span: int
    shown: int


@dataclass(frozen=True)
class ReportContext:
    """Everything the template and the page's scripts need (`payload` is the page's JSON)."""

    h: Header
    columns: list[Column]
    col_groups: list[ColumnGroup]
    col_group: list[int]  # each column's group
    rows: list[LeaderRow]
    rec_id: str | None
    tie_ids: list[str]
    prompt_verdict: PromptVerdict | None
    rec_name: str | None
    rec_reason: str
    methods: list[str]
    findings: list[FindingGroup]
    n_findings: int
    score_tables: list[ScoreTable]
    cmp: JSONDict | None
    payload: JSONDict
    store_path: str
    data_checks: list[dict[str, str]] | None
    ratings: dict[str, object] | None
    calibration: list[CalibrationRow]
    sections: dict[str, list[View]]
    sample: ExampleSample


def report_data(store: Store, run_id: str) -> RunData:
    """The run as the report reads it: every aggregate; the per-example values its paired comparisons use (of the
    held-out suite only the ranking metric's); of the example rows only the memorization suites' copied spans (the
    explorer's rows come from `sample.choose`)."""
    data = load_run(store, run_id, tables=("variants", "scores", "findings", "train_log"))
    suite, metric = data.suite_of("heldout"), primary_metric(data)
    data.samples = explore.run_samples(store, run_id, {suite: [metric] if metric else []} if suite else {})
    data.examples = explore.copied_rows(store, run_id, suites_of(data, "memorization"))
    return data


def build_context(store: Store, run_id: str, compare_ids: list[str], examples: int | None = DEFAULT_EXAMPLES
                  ) -> ReportContext:
    """Everything the template and the page's scripts need, read from the store; the explorer embeds at most
    `examples` example rows (None: every row)."""
    data = report_data(store, run_id)
    deltas = forgetting(data)
    forget = forgetting_cells(deltas)
    columns, rows = leaderboard(data, forget, forgetting_mde(deltas))
    rec = recommend(data, deltas)
    rec_id, rec_reason = rec.variant_id, rec.reason
    vindex = {str(v): i for i, v in enumerate(data.variants["variant_id"])}
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    metric, heldout = primary_metric(data), data.suite_of("heldout")
    rank: dict[str, float | None] = {}  # variant index (as a JSON key) -> its held-out score
    for vid, i in vindex.items():
        s = data.score(vid, heldout, metric) if metric else None
        rank[str(i)] = None if s is None or s[0] != s[0] else s[0]
    strings = Strings()
    sample = choose(store, data, rec_id or rec.candidate_id, examples)
    cmp = compare(store, data, compare_ids) if compare_ids else None
    payload: JSONDict = {
        "variants": variant_list(data), "recommended": vindex.get(rec_id) if rec_id else None,
        "primary_metric": metric, "primary_suite": heldout, "rank": rank,
        "loss": loss_curves(data, vindex), "pareto": pareto(data, vindex, forget), "heatmap": heatmap(data),
        "suite_scores": suite_scores(data, vindex), "explorer": explorer(sample, data, vindex, strings),
        "compare": cmp,
    }
    payload["strings"] = strings.items
    groups: list[ColumnGroup] = []
    col_group: list[int] = []  # each column's group
    for c in columns:
        if not (groups and groups[-1]["label"] == c.group):
            groups.append(ColumnGroup(label=c.group, span=0, shown=0))
        groups[-1]["span"] += 1
        groups[-1]["shown"] += not c.optional
        col_group.append(len(groups) - 1)
    findings = findings_by_variant(data)
    ratings = run_rating_summary(store, data)
    calibration = judge_calibration(store, data) if ratings else []
    return ReportContext(
        h=header(data), columns=columns, col_groups=groups, col_group=col_group, rows=rows, rec_id=rec_id,
        tie_ids=list(rec.tie_group) if len(rec.tie_group) > 1 else [],
        prompt_verdict=prompt_vs_finetuning(data),
        rec_name=names.get(rec_id) if rec_id else None, rec_reason=rec_reason,
        methods=sorted(set(data.variants["method"].astype(str)) - {"base"}),
        findings=findings, n_findings=sum(len(g["entries"]) for g in findings),
        score_tables=score_tables(data), cmp=cmp, payload=payload, store_path=str(store.path),
        data_checks=data_checks(data), ratings=ratings_view(ratings, data) if ratings else None,
        calibration=calibration, sections=sections(data, rec_id, calibration), sample=sample)


def render(context: ReportContext) -> str:
    """The HTML page for a context from `build_context`."""
    # Markup below wraps only files vendored in harness/report/static (never data); data goes through script_json.
    scripts = [static_text(name) for name in SCRIPTS]
    html = environment().get_template("report.html.j2").render(
        **{f.name: getattr(context, f.name) for f in fields(context)}, version=__version__, csp=content_security_policy(scripts),
        css=Markup(static_text("report.css")), scripts=[Markup(s) for s in scripts],
        data_json=script_json(context.payload), licenses=static_text("THIRD_PARTY_LICENSES.txt"),
        built_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return html


def build_report(db: str | Path, run: str | None = "latest", *, compare: list[str] | tuple[str, ...] = (),
                 output: str | Path | None = None, examples: int | None = DEFAULT_EXAMPLES) -> Path:
    """Build the report for `run` (optionally against other runs) and return the path of the HTML file; its
    example explorer embeds at most `examples` example rows, chosen by `sample.choose` (None: every row)."""
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run)
        others = [store.resolve_run(r) for r in compare]
        context = build_context(store, run_id, [r for r in dict.fromkeys(others) if r != run_id], examples)
    path = Path(output) if output is not None else default_output(context.h["name"], run_id)
    if path.is_dir():
        raise HarnessInputError(f"-o {path}: is a folder; give a file name such as {path / 'report.html'}")
    return write_output(path, render(context), errors="replace")
