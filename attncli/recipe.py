"""A recipe chosen from the data: the options a user leaves unset, filled in from the corpus size.

The defaults of `attncli train` were tuned on 114k Tatoeba pairs; with the same options a 10,000-
pair corpus gave dev BLEU 3.5 in 8 minutes, and 26.3 with a few options picked by hand (a 2k
vocabulary, tied output embeddings, dropout 0.3, 2,048-token batches). Sennrich & Zhang (2019,
"Revisiting Low-Resource Neural Machine Translation") found the same for RNN models on small
data: small subword vocabularies, small batches, more dropout, tied embeddings. The rule, by
training pairs (after the dev split):

    pairs           vocabulary  batch tokens  dropout  tied output*  warm-up      learning rate  subword sampling  lexical model  aligner guide
    < 3,000         2,000       2,048         0.3      yes           100 updates  0.001          1.0               yes            yes
    < 5,000         2,000       2,048         0.3      yes           100 updates  0.001          off               yes            yes
    < 30,000        2,000       2,048         0.3      yes           400          0.002          off               yes            yes
    < 60,000        3,000       4,096         0.2      no            400          0.002          off               yes            yes
    60,000 or more  8,000       4,096         0.2      no            400          0.002          off               no             no  (the shipped es-en recipe)
      with --max-minutes 90 or less: vocabulary 4,000, the lexical model and the aligner guide (SHORT_BUDGET_CHOICES)

    * tied output embeddings only when --embed-size equals --hidden-size (the default 256/256).

Subword sampling (subword_sampling.py, Kudo 2018) regularises the smallest corpora, which
otherwise stop improving after a minute or two: 2,000 pairs, 5 minutes, dev BLEU (chrF) with
alpha 1.0 / 0.5 / off: es-en 10.24 (25.95) / 10.21 (26.29) / 9.88 (24.72), fr-en 14.14 (28.33)
/ 12.76 (28.04) / 13.31 (27.26); a second es-en slice 10.91 (26.09) on, 10.27 (24.88) off. Its
drawn segmentations are longer, so each update costs more and learns less: at 4,000 es-en pairs
it cost more than it helped (6 minutes: 16.05 on, 17.16 off; no time limit: 16.37 on), at
10,000 pairs in 8 minutes too (26.90 vs 27.56; alpha 0.5 with SentencePiece's own sampler in a
trial: 21.90 vs 27.29). Between 2,000 and 4,000 the boundary is a guess.

The lexical model (lexical.py, Nguyen & Chiang 2018) gave the largest gain measured here at every
size up to 30,000 pairs, dev BLEU (chrF) with it against the rule without it, beam 5: 2,000 pairs,
5 minutes: es-en 11.94 (28.88) vs 10.24 (25.95), fr-en 15.65 (31.30) vs 14.14 (28.33), a second
es-en slice 12.76 (29.04) vs 10.91 (26.09), en-es 9.48 (26.88) vs 7.81 (24.43); 4,000 es-en, 6
minutes: 19.14 (36.87) vs 17.16 (33.12); 10,000 pairs, 8 minutes: es-en 30.55 (47.96) vs 27.49
(43.39), fr-en 33.19 (49.15) vs 28.86 (44.20); 30,000 pairs, 15 minutes: es-en 36.72 (53.32) vs
35.59 (51.54), fr-en 42.07 (57.58) vs 39.25 (54.44). Each update costs more where the vocabulary is
large (the output product reads [h̃; l], twice as wide): a quarter at 3,000 pieces, ~1% at 1,000.
On all 113,964 es-en pairs in 30 minutes (4,000 pieces, below) it gave 47.59 (63.24) vs 45.21
(60.38) (all 165,978 fr-en pairs: 52.04 (66.04) vs 48.25 (62.76)); in 90 minutes, with 4,000
pieces, 52.05 against the shipped model's 50.45 (below). Without a budget of 90 minutes or less the
largest corpora keep the shipped recipe, without it.

With the lexical model a larger vocabulary pays off on the smallest corpora (whole words for it to
translate): 2,000 pairs, 5 minutes, 2,000 pieces against 1,000: es-en 12.45 (29.81) vs 12.01
(28.76), fr-en 16.40 (31.80) vs 15.83 (31.17), a second es-en slice 12.82 (29.45) vs 12.76 (29.04),
en-es 10.45 (28.36) vs 9.48 (26.88); without it 2,000 pieces had lost (es-en 9.49 vs 10.24); 4,000
es-en pairs, 6 minutes: 19.56 (36.82) vs 19.14 (36.87), even, so 2,000 there too. Subword sampling
still helps with it (off: es-en 11.61, fr-en 15.24).

A time budget of 90 minutes or less (--max-minutes 90 or less) gives 60,000 pairs or more a
vocabulary of 4,000 and the lexical model: the 8,000-piece output layer makes each update ~2x
slower, and the lexical model helps at every size measured. Beyond 90 minutes, or with no budget,
they keep the shipped recipe (8,000 pieces, no lexical model): longer runs are not measured yet.
Measured on all 113,964 Tatoeba es-en pairs, one thread, dev BLEU beam 5: 30 minutes, 8,000
pieces 35.76 vs 4,000 45.21 vs 2,000 44.58 (benchmarks/data_sizes.py; all 165,978 fr-en pairs:
42.73, 48.25, 49.09); 15 minutes, 20.03 vs 31.87 (benchmarks/train_sweep.py); 90 minutes with
the shipped model's sizes (embeddings 256, hidden 384, dropout 0.25, seed 1), 4,000 pieces and the
lexical model on one thread 52.05 (chrF 65.92), against the shipped es-en model (8,000 pieces,
no lexical model, two threads, float32) 50.45 (64.57); rerun on a slower machine (2026-12-02,
5,073 updates in the 90 minutes) 49.93, where the 8,000-piece recipe on one thread beside another
job had made 46.88 in 85 minutes, so the rule holds for one thread. At 30,000 pairs, 15 minutes: 2,000 / 3,000 / 4,000
pieces es-en 35.64 / 35.81 / 36.84 (3,000 vs 4,000 side by side: 35.59 vs 35.65), fr-en 38.81 /
39.25 / 36.59, so 3,000 from 30,000 pairs.

The aligner guide (word_aligner.py: fast_align's model, both directions, grow-diag-final-and, on
the training pairs themselves) trains the attention towards the links a statistical aligner finds
(guided alignment, weight --guide-weight 0.5). The attention then forms sooner, and it gave the
largest gain of any single choice at every size measured; dev BLEU (chrF) with it against the
rule without it, one run each, side by side: 2,000 pairs, 5 minutes: es-en 14.46 (32.38) vs 11.75
(28.06), fr-en 17.39 (34.27) vs 14.87 (30.62), en-es 12.23 (32.31) vs 9.99 (28.39) (eflomal's
links instead: es-en 14.44, fr-en 17.37); Hansards fr-en (2,867 long, tokenized pairs, 5 minutes)
11.14 (27.70) vs 6.82 (18.84), with dev AER 0.387 vs 0.758; 4,000 es-en pairs, 6 minutes: 21.61
(39.65) vs 19.32 (36.42); 10,000, 8 minutes: 31.19 (48.78) vs 29.55 (47.12); 30,000, 15 minutes:
38.78 (55.96) vs 35.01 (51.88) (greedy dev BLEU at update 600: 29.32 vs 10.88). Guide weight 1.0
at 2,000 pairs: es-en 14.18, fr-en 17.62, as 0.5 within the noise. All 113,964 es-en pairs, 30
minutes (4,000 pieces, the lexical model): 47.52 (63.35) vs 44.94 (60.85), though each update
costs ~8% more (guide matrices built per pair), so a budget of 90 minutes or less takes it too;
longer runs on large corpora are not measured yet and keep the shipped recipe, without it.

Above word_aligner.MAX_PAIRS pairs the built-in aligner, which holds the corpus in memory, is not
chosen (--guide-alignments brings an outside aligner's links).

A vocabulary the rule chose grows to hold every distinct character of a corpus that has more
(Chinese, Japanese: training_data.train_tokenizers). Any option given on the command line (or set
in TrainConfig) wins over the rule.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from .config import TrainConfig


class Row(NamedTuple):
    """One row of the rule: the TrainConfig values for corpora of fewer than `below` pairs."""

    below: int | None             # None: the rest
    vocab_size: int
    batch_tokens: int
    dropout: float
    tied_output: bool             # when --embed-size equals --hidden-size
    warmup_steps: int
    learning_rate: float
    subword_sampling: float       # alpha; 0: off
    lexical_model: bool
    aligner_guide: bool           # attention guided by the built-in aligner's links (word_aligner.py)


RULE = (
    Row(3_000, 2000, 2048, 0.3, True, 100, 0.001, 1.0, True, True),
    Row(5_000, 2000, 2048, 0.3, True, 100, 0.001, 0.0, True, True),
    Row(30_000, 2000, 2048, 0.3, True, 400, 0.002, 0.0, True, True),
    Row(60_000, 3000, 4096, 0.2, False, 400, 0.002, 0.0, True, True),
    Row(None, 8000, 4096, 0.2, False, 400, 0.002, 0.0, False, False),
)
CHOSEN_FIELDS = Row._fields[1:]
SHORT_BUDGET_MINUTES = 90     # --max-minutes up to this: the largest corpora get SHORT_BUDGET_CHOICES
SHORT_BUDGET_CHOICES = {"vocab_size": 4000, "lexical_model": True, "aligner_guide": True}


def complete_recipe(config: TrainConfig, pairs: int) -> tuple[TrainConfig, str]:
    """`config` with its unset (None) recipe fields chosen for `pairs` training pairs, and a line
    saying what was chosen (empty if nothing was)."""
    row = next(row for row in RULE if row.below is None or pairs < row.below)
    shortened = row.below is None and 0 < config.max_minutes <= SHORT_BUDGET_MINUTES
    rule = row._asdict()
    del rule["below"]
    rule["tied_output"] = row.tied_output and config.embed_size == config.hidden_size
    if shortened:
        rule.update(SHORT_BUDGET_CHOICES)
    from .word_aligner import MAX_PAIRS as aligner_max_pairs      # the aligner holds the corpus in memory
    unguided_why = ""
    if rule["aligner_guide"] and pairs > aligner_max_pairs:
        rule["aligner_guide"], unguided_why = False, f" (it aligns at most {aligner_max_pairs:,} pairs)"
    chosen = {name: value for name, value in rule.items() if getattr(config, name) is None}
    if not chosen:
        return config, ""
    words = {"vocab_size": f"vocabulary {chosen.get('vocab_size', 0):,}",
             "batch_tokens": f"batches of {chosen.get('batch_tokens', 0):,} tokens",
             "dropout": f"dropout {chosen.get('dropout', 0):g}",
             "tied_output": "tied output embeddings" if chosen.get("tied_output") else "separate output embeddings",
             "warmup_steps": f"warm-up {chosen.get('warmup_steps', 0)} updates",
             "learning_rate": f"learning rate {chosen.get('learning_rate', 0):g}",
             "subword_sampling": (f"subword sampling {chosen['subword_sampling']:g}" if chosen.get("subword_sampling")
                                  else "no subword sampling"),
             "lexical_model": "lexical model" if chosen.get("lexical_model") else "no lexical model",
             "aligner_guide": ("attention guided by the built-in aligner" if chosen.get("aligner_guide")
                               else "no aligner guide" + unguided_why)}
    described = ", ".join(words[name] for name in CHOSEN_FIELDS if name in chosen)
    budget = f" in {config.max_minutes:g} minutes" if shortened and chosen.keys() & SHORT_BUDGET_CHOICES.keys() else ""
    return dataclasses.replace(config, **chosen), f"{pairs:,} training pairs{budget} → {described} (options override)"
