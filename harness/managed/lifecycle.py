"""What managed providers have announced about closing fine-tuning, in one table, and the clear refusal built on it.

The dry run and the start of a sweep warn from these dates; a job creation the provider refuses (fine-tuning closed
for the organisation, a retired or non-fine-tunable base model) fails its variant with a message that says so, the
date that applies, and what to do instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from harness.managed.client import describe_error, error_fields
from harness.scores import JSONDict


@dataclass(frozen=True)
class Cutoff:
    """From `date` on, `provider` creates no new fine-tuning jobs for `who`."""

    provider: str  # the model kind: 'openai'
    who: str
    date: date


# OpenAI's deprecations page, notice of 2026-05-07 (as reported in the press). Inference on existing fine-tuned models
# continues until their base models are retired.
CUTOFF_SOURCE = "OpenAI deprecations page, notice of 2026-05-07, as reported"
CUTOFFS: tuple[Cutoff, ...] = (
    Cutoff("openai", "organisations that had never run a fine-tuning job", date(2026, 5, 7)),
    Cutoff("openai", "organisations with no recent fine-tuning activity", date(2026, 7, 2)),
    Cutoff("openai", "every organisation", date(2027, 1, 6)),
)
# Base model families whose retirement (and with it, inference on their fine-tunes) has been reported; month only,
# since no day has been announced. Longest prefix wins, as in the price table.
RETIREMENTS: dict[tuple[str, str], str] = {
    ("openai", "gpt-4o"): "January 2027",
    ("openai", "gpt-4.1"): "January 2027",
}
LABELS = {"openai": "OpenAI", "azure-openai": "Azure OpenAI"}

CLOSED_CODES = {"fine_tuning_unavailable", "fine_tuning_disabled", "fine_tuning_not_available", "fine_tuning_closed"}
MODEL_CODES = {"model_not_available", "model_not_found", "model_retired", "model_deprecated", "invalid_model",
               "unsupported_model", "model_not_fine_tunable"}
_FINE_TUNING = re.compile(r"fine[- _]?tun")
_ORG = re.compile(r"organi[sz]ation|account|subscription|tenant")
_CLOSED = re.compile(r"no longer|not available|unavailable|disabled|closed|not (allowed|permitted|enabled)|wound down")
_MODEL = re.compile(r"not available for fine[- ]?tuning|does not support fine[- ]?tuning|cannot be fine[- ]?tuned|"
                    r"not fine[- ]?tunable|\bmodel\b[^.]*\b(has been|is|was) (retired|deprecated)")


def today() -> date:
    """The date the notices are computed for (a function, so tests can move the clock)."""
    return date.today()


def cutoffs(provider: str) -> list[Cutoff]:
    return sorted((c for c in CUTOFFS if c.provider == provider), key=lambda c: c.date)


def cutoff_notice(provider: str, on: date | None = None) -> str | None:
    """One sentence with every announced cutoff of `provider`, each marked passed or 'in N days'; None if none."""
    rows = cutoffs(provider)
    if not rows:
        return None
    on = on or today()
    label = LABELS.get(provider, provider)
    final = rows[-1]
    if on >= final.date:
        return (f"{label} closed fine-tuning job creation to {final.who} on {final.date.isoformat()} "
                f"({CUTOFF_SOURCE}).")
    parts = [f"{c.date.isoformat()} for {c.who} ({'passed' if on >= c.date else f'in {(c.date - on).days} days'})"
             for c in rows]
    return f"{label} stops creating new fine-tuning jobs: {'; '.join(parts)} ({CUTOFF_SOURCE})."


def retirement_note(provider: str, model_id: str) -> str | None:
    """When inference on this base model (or a fine-tune of it) is reported to end, or None."""
    base = model_id.split(":")[1] if model_id.startswith("ft:") and model_id.count(":") >= 1 else model_id
    hits = [fam for (p, fam) in RETIREMENTS if p == provider and (base == fam or base.startswith(fam + "-"))]
    if not hits:
        return None
    fam = max(hits, key=len)
    return (f"The {fam} family's retirement is reported for {RETIREMENTS[(provider, fam)]}; {LABELS.get(provider)} "
            f"serves fine-tunes of it only until then.")


def alternatives(provider: str) -> str:
    """What to do instead of a managed job on `provider`."""
    out = []
    if provider != "azure-openai":
        out.append("fine-tune on Azure OpenAI (model: azure-openai:<base model>, method: openai)")
    out.append("train an open-weight model locally with method: lora or qlora on the same JSONL")
    ckpt = "azure-openai:<deployment>" if provider == "azure-openai" else "openai:ft:..."
    out.append(f"keep scoring the fine-tune you already have with method: given and sweep.checkpoint: ['{ckpt}']")
    return f"Alternatives: {'; '.join(out)}. docs/migrating-from-openai.md walks through the move."


def classify_refusal(exc: BaseException) -> str | None:
    """'closed' (fine-tuning closed for the organisation), 'model' (base model retired or not fine-tunable), or None
    for any other error. The error shapes are modelled on the providers' documented error bodies; see
    docs/managed-fine-tuning.md."""
    f = error_fields(exc)
    if f.status not in (400, 403, 404, 410, 422):
        return None
    code, msg = (f.code or "").lower(), (f.message or "").lower()
    if code in CLOSED_CODES:
        return "closed"
    if code in MODEL_CODES or (f.param == "model" and (_FINE_TUNING.search(msg) or _MODEL.search(msg))):
        return "model"
    if _FINE_TUNING.search(msg) and _ORG.search(msg) and _CLOSED.search(msg):
        return "closed"
    return "model" if _MODEL.search(msg) else None


def refusal_message(provider: str, base_model: str, exc: BaseException, on: date | None = None) -> str | None:
    """The variant's error when `provider` refused to create its job for good; None when the error is another kind."""
    why = classify_refusal(exc)
    if why is None:
        return None
    label = LABELS.get(provider, provider)
    if why == "closed":
        head = f"{label} refused to create the fine-tuning job: fine-tuning is closed for this organisation"
    else:
        head = (f"{label} refused to create the fine-tuning job: base model {base_model!r} is retired, not offered "
                "for fine-tuning here, or unknown")
    parts = [f"{head} ({describe_error(exc)}).", cutoff_notice(provider, on), retirement_note(provider, base_model),
             alternatives(provider)]
    return " ".join(p for p in parts if p)


def plan_notices(provider: str, n_trainees: int, given_models: list[str], base_model: str | None = None,
                 on: date | None = None) -> list[str]:
    """Warnings for a plan: managed jobs on a provider that is closing fine-tuning (and whose base model is reported
    to retire), and `given` fine-tunes whose base model is reported to retire."""
    out: list[str] = []
    notice = cutoff_notice(provider, on)
    if n_trainees and notice:
        retire = retirement_note(provider, base_model) if base_model else None
        out.append(f"{n_trainees} method: openai variant(s) fine-tune on {LABELS.get(provider, provider)}. {notice} "
                   + (f"{retire} " if retire else "") + alternatives(provider))
    for model in given_models:
        note = retirement_note("openai", model)
        if note:
            out.append(f"given model {model}: {note} Prove a replacement before then (docs/migrating-from-openai.md).")
    return out


def refusal_detail(provider: str, exc: BaseException, on: date | None = None) -> JSONDict:
    """What config.openai.refusal stores: the kind of refusal and the dates that applied."""
    return {"kind": classify_refusal(exc), "provider": provider,
            "cutoffs": [{"who": c.who, "date": c.date.isoformat()} for c in cutoffs(provider)],
            "checked_on": (on or today()).isoformat()}
