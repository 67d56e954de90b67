"""Word-overlap F1 between each prediction and its reference: an `evaluate.Metric` written for the harness's tests
(docs/scoring.md, 'evaluate', shows how to write one).

Words are the lower-cased, whitespace-separated tokens; overlap counts each word as often as both sides have it.
Returns `f1`, `precision` and `recall` averaged over examples (so the harness keeps them per example) and
`micro_f1`, computed from the overlap counts summed over the corpus (so it is corpus-level).
"""

from collections import Counter

import datasets
import evaluate


class WordF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Word-overlap F1 (bag of lower-cased whitespace words): macro over examples, and micro.",
            citation="",
            inputs_description="predictions: list of str; references: list of str",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, lowercase=True):
        f1s, precisions, recalls = [], [], []
        common_sum = pred_sum = ref_sum = 0
        for pred, ref in zip(predictions, references, strict=True):
            pw = (pred.lower() if lowercase else pred).split()
            rw = (ref.lower() if lowercase else ref).split()
            common = sum((Counter(pw) & Counter(rw)).values())
            common_sum, pred_sum, ref_sum = common_sum + common, pred_sum + len(pw), ref_sum + len(rw)
            p = common / len(pw) if pw else 0.0
            r = common / len(rw) if rw else 0.0
            precisions.append(p)
            recalls.append(r)
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        n = len(f1s)
        micro = 2 * common_sum / (pred_sum + ref_sum) if pred_sum + ref_sum else 0.0
        return {"f1": sum(f1s) / n, "precision": sum(precisions) / n, "recall": sum(recalls) / n, "micro_f1": micro,
                "name": "word_f1"}
