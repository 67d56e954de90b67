"""Near-duplicates between a training set and a held-out one: the Jaccard similarity of word shingles (candidates
from MinHash LSH, confirmed exactly), and a second signal for rewordings, a distinctive run of words both share
(docs/scoring.md, data checks; measured by benchmarks/near_duplicates.py)."""

from __future__ import annotations

import re

from harness.data.chat import Example

NEAR_DUPLICATE_THRESHOLD = 0.8  # Jaccard similarity of word shingles
SHINGLE_WORDS = 3
NUM_PERM = 128
RUN_WORDS = 13  # a second signal: a run of this many words in common (lm-evaluation-harness decontaminates on 13-grams)
PROMPT_GATE = 0.2  # ... counts only when the prompts are this alike too (Jaccard of their shingles): not a canned reply


def words(e: Example) -> list[str]:
    """The example's text as lowercase words: every message but the system prompt (which most examples share)."""
    return re.findall(r"\w+", " ".join(m["content"] for m in e.messages if m["role"] != "system").lower())


def shingles(ws: list[str], k: int = SHINGLE_WORDS) -> set[str]:
    """The set of k-word shingles (the whole text as one shingle when it is shorter than k words)."""
    if len(ws) < k:
        return {" ".join(ws)} if ws else set()
    return {" ".join(ws[i:i + k]) for i in range(len(ws) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def near_duplicate_pairs(train: list[Example], other: list[Example], threshold: float = NEAR_DUPLICATE_THRESHOLD,
                         *, k: int = SHINGLE_WORDS, num_perm: int = NUM_PERM) -> list[tuple[Example, Example, float]]:
    """(train example, other example, Jaccard similarity) for every pair at or above `threshold`: MinHash LSH
    finds candidates (at a lower threshold, so that few true pairs are missed), the exact Jaccard similarity of
    their shingle sets confirms them."""
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(words(e), k) for e in [*train, *other]]
    signatures = MinHash.bulk([[s.encode() for s in sh] for sh in sets], num_perm=num_perm, seed=1)
    lsh = MinHashLSH(threshold=max(0.05, threshold - 0.2), num_perm=num_perm)
    for i in range(len(train)):
        if sets[i]:
            lsh.insert(i, signatures[i])
    pairs = []
    for j, e in enumerate(other, start=len(train)):
        if not sets[j]:
            continue
        for i in sorted(lsh.query(signatures[j])):
            sim = jaccard(sets[i], sets[j])
            if sim >= threshold:
                pairs.append((train[i], e, sim))
    return pairs


def prompt_words(e: Example) -> list[str]:
    """The words of the request: every message but the system prompt and the final assistant answer (all of them
    when the example has no final answer)."""
    messages = e.messages[:-1] if e.messages and e.messages[-1]["role"] == "assistant" else e.messages
    return re.findall(r"\w+", " ".join(m["content"] for m in messages if m["role"] != "system").lower())


def _runs(ws: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)]


def shared_run_pairs(train: list[Example], other: list[Example], *, n: int = RUN_WORDS, gate: float = PROMPT_GATE,
                     k: int = SHINGLE_WORDS) -> list[tuple[Example, Example, float, int]]:
    """(train example, other example, Jaccard similarity, longest run of words in common) for every pair that shares
    a run of `n` words found in no other training example (a run several training examples share is the data's house
    style), and whose prompts are alike too (Jaccard of their shingles >= `gate`: the same words in two answers to
    different requests are a canned reply, not a copy). Catches rewordings the Jaccard threshold misses: a sentence
    added, removed or rephrased, clauses reordered, numbers or names changed (docs/scoring.md, data checks)."""
    tokens = [words(e) for e in train]
    owner: dict[tuple[str, ...], int] = {}
    shared: set[tuple[str, ...]] = set()
    for i, ws in enumerate(tokens):
        for g in set(_runs(ws, n)):
            if g in owner:
                shared.add(g)
            owner[g] = i
    for g in shared:
        del owner[g]
    prompts = [shingles(prompt_words(e), k) for e in train]
    out = []
    for e in other:
        ws = words(e)
        grams = _runs(ws, n)
        hits = sorted({owner[g] for g in grams if g in owner})
        mine = shingles(prompt_words(e), k)
        for i in hits:
            if jaccard(prompts[i], mine) < gate:
                continue
            theirs = set(_runs(tokens[i], n))
            longest = streak = 0
            for g in grams:
                streak = streak + 1 if g in theirs else 0
                longest = max(longest, streak)
            out.append((train[i], e, jaccard(shingles(tokens[i], k), shingles(ws, k)), longest + n - 1))
    return out
