"""Subword regularization (Kudo 2018, --subword-sampling): every update sees its training pairs in
a segmentation drawn anew from the SentencePiece unigram model, P(pieces) ∝ (∏ p(piece))^alpha:
the same text in other pieces, a regulariser that helps small corpora.

The draw is forward filtering, backward sampling over each word's lattice of pieces (SentencePiece
never lets a piece cross a space, so a sentence's lattice is its words' lattices in a row).
SentencePiece can sample too (`enable_sampling`), but from a per-thread generator that a seed set
later does not reset (its own training seeds it first), so the same seed drew differently in two
processes; here a seed decides every draw: --seed repeats a run, --resume continues it, and
--nproc 2 trains what one process trains.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
from typing import Sequence

from .tokenizer import UNK_ID, Tokenizer

CACHED_WORDS = 20_000         # lattices kept (distinct words, ~3 KB each); 2,000 pairs have ~10,000
LONGEST_WORD = 30             # characters (the "▁" aside); longer words keep their pieces
# The pieces ending at one position of a word: their start positions, ids, and cumulative
# probabilities of being the last piece of a segmentation drawn up to that position.
Ending = tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]


class SegmentationSampler:
    """Draws segmentations of text from one tokenizer's unigram model."""

    def __init__(self, tokenizer: Tokenizer, alpha: float) -> None:
        processor = tokenizer.processor
        self.tokenizer, self.alpha = tokenizer, alpha
        self.texts = [processor.id_to_piece(i) for i in range(len(tokenizer))]      # piece id -> its text
        self.pieces = {self.texts[i]: (i, processor.get_score(i)) for i in range(len(tokenizer))
                       if not (processor.is_control(i) or processor.is_unknown(i) or processor.is_unused(i))}
        self.longest = max(map(len, self.pieces))
        self.lattice = functools.lru_cache(maxsize=CACHED_WORDS)(self._lattice)

    def _lattice(self, word: str) -> list[Ending] | None:
        """The pieces ending at each position of `word` ("▁" and its letters; positions 0..len,
        none ending at 0), or None when the word cannot be made of pieces."""
        forward = [0.0] + [-math.inf] * len(word)            # log mass of all segmentations of word[:end]
        edges: list[Ending] = [((), (), ())]
        for end in range(1, len(word) + 1):
            starts, ids, weights = [], [], []
            for start in range(max(0, end - self.longest), end):
                piece = self.pieces.get(word[start:end])
                if piece is not None and forward[start] > -math.inf:
                    starts.append(start)
                    ids.append(piece[0])
                    weights.append(forward[start] + self.alpha * piece[1])
            if weights:
                top = max(weights)
                forward[end] = top + math.log(sum(math.exp(w - top) for w in weights))
            cumulative = itertools.accumulate(math.exp(w - forward[end]) for w in weights)
            edges.append((tuple(starts), tuple(ids), tuple(cumulative)))
        return edges if forward[-1] > -math.inf else None

    def draw_word(self, word: str, rng: random.Random) -> list[int] | None:
        """Piece ids of one word ("▁" and its letters) in a drawn segmentation (None: it has none)."""
        edges = self.lattice(word)
        if edges is None:
            return None
        ids, end = [], len(edges) - 1
        while end > 0:
            starts, piece_ids, cumulative = edges[end]
            pick = min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)
            ids.append(piece_ids[pick])
            end = starts[pick]
        return ids[::-1]

    def draw(self, ids: Sequence[int], seed: int, max_len: int) -> list[int]:
        """The text of `ids` in a segmentation drawn with `seed`, word by word; a word longer
        than LONGEST_WORD characters keeps its pieces (text without spaces, as in Chinese or
        Japanese, would be one long lattice per sentence), and so does the whole text when it
        holds <unk> (its surface is lost) or the draw has more than `max_len` pieces."""
        if UNK_ID in ids:
            return list(ids)
        rng = random.Random(seed)
        drawn: list[int] = []
        word_of_piece = self.tokenizer.word_of_pieces(ids)
        for _, positions in itertools.groupby(range(len(ids)), key=word_of_piece.__getitem__):
            word_ids = [ids[i] for i in positions]
            word = "".join(self.texts[i] for i in word_ids)
            pieces = self.draw_word(word, rng) if len(word) - 1 <= LONGEST_WORD else None
            drawn.extend(word_ids if pieces is None else pieces)
        return drawn if len(drawn) <= max_len else list(ids)


class Resampler:
    """Both sides of training pairs in drawn segmentations; one seed per pair and update, so a
    pair is drawn alike however a batch is shared among processes."""

    def __init__(self, src_tok: Tokenizer, tgt_tok: Tokenizer, alpha: float, max_len: int) -> None:
        self.src = SegmentationSampler(src_tok, alpha)
        self.tgt = self.src if tgt_tok.model_proto == src_tok.model_proto else SegmentationSampler(tgt_tok, alpha)
        self.max_len = max_len

    def pairs(self, indices: Sequence[int], src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]],
              update_seed: int) -> tuple[list[list[int]], list[list[int]]]:
        """Pairs `indices` (their piece ids `src`, `tgt`), drawn for the update whose seed is
        `update_seed`. (Seeds are mixed arithmetically: pair i + 1,000,003 of an update draws
        as pair i of the next, which only a corpus of a million pairs can see.)"""
        seeds = [(update_seed * 1_000_003 + int(index)) * 2 for index in indices]
        return ([self.src.draw(ids, s, self.max_len) for ids, s in zip(src, seeds)],
                [self.tgt.draw(ids, s + 1, self.max_len) for ids, s in zip(tgt, seeds)])
