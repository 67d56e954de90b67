"""Recall and false pairs of the near-duplicate data check on a labelled set of planted rewordings.

tests/data/near_duplicates holds 40 training examples (support tickets, medical, coding, travel, finance, cooking, HR
and science questions with their answers) and 80 test examples: for each training example one planted near-copy (8
kinds, 5 each: word swaps, synonyms, reordered clauses, an added sentence, a removed sentence, changed numbers and
names, one sentence reworded, several edits combined) and one negative (same domain, template and house style, another
request); labels.jsonl says which is which. Every (train, test) pair the check reports is compared with the labels:
recall is the share of planted copies reported, a false pair is a reported pair that is not a planted copy. The
default experiment's data (templated tickets with canned replies, no planted copies) is checked too.

    python benchmarks/near_duplicates.py [--threshold 0.8] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from harness.data.chat import Example, load_examples
from harness.data.quality import near_duplicates
from harness.data.similarity import NEAR_DUPLICATE_THRESHOLD, near_duplicate_pairs

REPO = Path(__file__).resolve().parent.parent
LABELLED = REPO / "tests" / "data" / "near_duplicates"
DEFAULT_EXPERIMENT = REPO / "experiments" / "acme-support" / "data"


def found(train: list[Example], test: list[Example], threshold: float, jaccard_only: bool) -> set[tuple[int, int]]:
    """(train line, test line) of every pair the check reports (the Jaccard rule alone where asked)."""
    if jaccard_only:
        return {(a.line, b.line) for a, b, _ in near_duplicate_pairs(train, test, threshold)}
    check = near_duplicates(train, test, "test", threshold)
    return set() if check is None else {(p["train_line"], p["line"]) for p in check.detail["pairs"]}


def measure(threshold: float = NEAR_DUPLICATE_THRESHOLD, jaccard_only: bool = False) -> dict[str, object]:
    """Recall per kind and overall, false pairs and negatives flagged on the labelled set; pairs on the default data."""
    train = load_examples(LABELLED / "train.jsonl", min_examples=1)
    test = load_examples(LABELLED / "test.jsonl", min_examples=1)
    labels = [json.loads(line) for line in (LABELLED / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    copies = {(x["train_line"], x["line"]): x["kind"] for x in labels if x["copy"]}
    negatives = {x["line"] for x in labels if not x["copy"]}
    pairs = found(train, test, threshold, jaccard_only)
    kinds = Counter(copies.values())
    caught = Counter(kind for pair, kind in copies.items() if pair in pairs)
    false = sorted(p for p in pairs if p not in copies)
    default = found(load_examples(DEFAULT_EXPERIMENT / "train.jsonl", min_examples=1),
                    load_examples(DEFAULT_EXPERIMENT / "test.jsonl", min_examples=1), threshold, jaccard_only)
    return {"threshold": threshold, "rule": "jaccard only" if jaccard_only else "jaccard or shared run",
            "recall": sum(caught.values()) / len(copies), "caught": sum(caught.values()), "copies": len(copies),
            "by_kind": {k: [caught[k], n] for k, n in sorted(kinds.items())},
            "false_pairs": len(false), "non_copy_pairs": len(train) * len(test) - len(copies),
            "false_pair_rate": len(false) / (len(train) * len(test) - len(copies)),
            "negatives_flagged": len({line for _, line in false if line in negatives}), "negatives": len(negatives),
            "false": [list(p) for p in false], "default_experiment_pairs": len(default)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threshold", type=float, default=NEAR_DUPLICATE_THRESHOLD)
    p.add_argument("--json", action="store_true", help="print both rules' measurements as JSON")
    args = p.parse_args()
    results = [measure(args.threshold), measure(args.threshold, jaccard_only=True)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"{r['rule']} (threshold {r['threshold']:g}): recall {r['caught']}/{r['copies']} = {r['recall']:.1%}; "
              f"false pairs {r['false_pairs']} of {r['non_copy_pairs']} non-copy pairs ({r['false_pair_rate']:.2%}), "
              f"negatives flagged {r['negatives_flagged']}/{r['negatives']}; default experiment's data: "
              f"{r['default_experiment_pairs']} pairs")
        for kind, (k, n) in r["by_kind"].items():  # type: ignore[attr-defined]
            print(f"    {kind:<22} {k}/{n}")


if __name__ == "__main__":
    main()
