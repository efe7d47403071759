"""Corpus-level translation scores with sacrebleu: BLEU, chrF and TER, with their signatures."""

from __future__ import annotations

from typing import Sequence


def score_translations(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """BLEU (13a), chrF and TER of `hypotheses` against one reference each."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    result: dict = {}
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF()), ("ter", TER())):
        score = metric.corpus_score(list(hypotheses), [list(references)])
        result[name] = round(score.score, 2)
        result[f"{name}_signature"] = str(metric.get_signature())
    return result
