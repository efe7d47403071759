"""Search rules shared by the torch search (search.py) and the NumPy runtime: how hypotheses are
ranked and how long an output may grow. Torch-free, so the NumPy runtime imports no torch."""

from __future__ import annotations

MAX_LENGTH_RATIO = 1.5   # output pieces per source piece (EOS included) ...
LENGTH_SLACK = 10        # ... plus this many: short sources may still get longer outputs


def normalize(score: float, num_pieces: int, length_penalty: float) -> float:
    """Length normalisation (Wu et al. 2016 style, simplified): divide by length ** alpha."""
    return score / float(num_pieces + 1) ** length_penalty


def length_limit(src_length: int) -> int:
    """Maximum output pieces for a source of `src_length` pieces (EOS included): never unbounded.

    At this step only EOS may follow."""
    return int(src_length * MAX_LENGTH_RATIO) + LENGTH_SLACK
