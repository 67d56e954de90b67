"""The report's findings list: each variant's findings, with pretty-printed evidence and what each could detect."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TypedDict

from harness.store.reads import RunData


class FindingEntry(TypedDict):
    """A finding as the report lists it, its evidence pretty-printed."""

    check: str
    severity: str
    message: str
    evidence: str
    detects: str


class FindingGroup(TypedDict):
    """A variant's findings."""

    variant_id: str
    name: str
    entries: list[FindingEntry]


def findings_by_variant(data: RunData) -> list[FindingGroup]:
    """Findings grouped by variant (plan order), each with pretty-printed evidence."""
    if data.findings.empty:
        return []
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    groups = []
    for vid in data.variants["variant_id"]:
        rows = data.findings[data.findings["variant_id"] == vid]
        if rows.empty:
            continue
        items = []
        for f in rows.to_dict("records"):
            ev = f.get("evidence")
            ev_text = "" if ev is None else json.dumps(ev, indent=2, ensure_ascii=False, default=str)
            items.append(FindingEntry(check=str(f.get("check") or ""), severity=str(f.get("severity") or ""),
                                      message=str(f.get("message") or ""), evidence=ev_text,
                                      detects=detectable(str(f.get("check") or ""), ev if isinstance(ev, dict) else {})))
        groups.append(FindingGroup(variant_id=str(vid), name=str(names.get(vid, vid)), entries=items))
    return groups


def detectable(check: str, evidence: Mapping[str, object]) -> str:
    """What a finding could have detected (its evidence's minimum detectable effect), as one line for the report."""
    mde = evidence.get("mde")
    if not isinstance(mde, int | float) or isinstance(mde, bool) or not math.isfinite(mde):
        return "minimum detectable effect not recorded (a finding stored by an older harness)"
    kind = evidence.get("kind")
    if check == "overfitting":
        what = f"a validation-loss rise above {mde:.2f} (min_rise, a threshold)"
    elif kind in ("floor", "ceiling"):
        what = f"a rate {mde:.2f} or more {'below the floor' if kind == 'floor' else 'above the ceiling'}"
    else:
        family = evidence.get("family")
        what = f"a difference of {mde:.2f} or more against base" + (
            f" (corrected over {family} comparisons)" if isinstance(family, int) and family > 1 else "")
    return f"could detect {what}, with 80% power"
