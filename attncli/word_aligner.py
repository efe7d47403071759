"""Word links found in a parallel corpus itself, to guide the attention without an outside aligner.

fast_align's model (Dyer, Chahuneau & Smith 2013, "A Simple, Fast, and Effective
Reparameterization of IBM Model 2"): each word of one side comes from one word of the other side
or from NULL; the prior favours the diagonal, p(i | j) ∝ exp(-TENSION · |i/n - j/m|) (NULL:
P_NULL), and the word translation table t(word | other word) is learnt by EM with a sparse
Dirichlet prior (variational Bayes, as fast_align's `-v`). It is trained in both directions and the
two are joined by grow-diag-final-and, as statistical MT pipelines do (Koehn et al.).

Words are the whitespace words of each line (those `inspect alignment` shows and guided training
reads); for the translation table a word is lower-cased and stripped of leading and trailing
punctuation ("¿Dónde" and "dónde" are one word), a word of punctuation only is itself.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import torch

Link = tuple[int, int]          # (source word i, target word j)

MAX_PAIRS = 500_000             # the corpus is held in memory: ~8 KB a pair (113,964 pairs: 0.9 GB, 13 s)
VERSION = 1                     # caches of links made by another version are rebuilt (training_data.py)
P_NULL = 0.08                   # fast_align's defaults
TENSION = 4.0
ITERATIONS = 5
DIRICHLET_ALPHA = 0.01
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def word_key(word: str) -> str:
    """The word as the translation table knows it: lower-cased, edge punctuation stripped."""
    return (_EDGE_PUNCTUATION.sub("", word) or word).lower()


def align_corpus(pairs: Sequence[tuple[str, str]]) -> list[set[Link]]:
    """Symmetrised word links (source i, target j) for every (source, target) pair."""
    sources = [source.split() for source, _ in pairs]
    targets = [target.split() for _, target in pairs]
    forward = _one_direction(sources, targets)            # each target word's source word
    reverse = _one_direction(targets, sources)            # each source word's target word
    return [grow_diag_final_and(f, {(i, j) for j, i in r}, len(s), len(t))
            for f, r, s, t in zip(forward, reverse, sources, targets)]


def _ids(sentences: Sequence[list[str]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(word ids of all sentences, concatenated; sentence lengths; vocabulary size)."""
    vocab: dict[str, int] = {}
    ids = [vocab.setdefault(word_key(word), len(vocab)) for words in sentences for word in words]
    return (torch.tensor(ids, dtype=torch.long), torch.tensor([len(w) for w in sentences], dtype=torch.long),
            len(vocab))


def _one_direction(given: Sequence[list[str]], generated: Sequence[list[str]]) -> list[set[Link]]:
    """fast_align from `given` to `generated`: for each pair, links (given i, generated j) of the
    generated words whose best explanation is a given word (not NULL)."""
    given_ids, given_len, given_vocab = _ids(given)
    gen_ids, gen_len, gen_vocab = _ids(generated)
    if gen_ids.numel() == 0:
        return [set() for _ in generated]
    cells = _Cells(given_ids, given_len, given_vocab, gen_ids, gen_len, gen_vocab)
    table = torch.ones(cells.keys.numel(), dtype=torch.float64)        # (distinct word pairs,)
    for _ in range(ITERATIONS):
        score = cells.prior * table[cells.key_of_cell]                  # (cells,)
        posterior = score / _group_sum(cells.word_of_cell, score, cells.words)[cells.word_of_cell]
        counts = torch.zeros_like(table).index_add_(0, cells.key_of_cell, posterior)
        table = _variational_bayes(counts, cells.given_of_key, given_vocab + 1)
    best = _best_cell(cells.word_of_cell, cells.prior * table[cells.key_of_cell], cells.words)   # (words,)
    return cells.links(best, len(generated))


class _Cells:
    """Every (generated word j, given word i or NULL) cell of every pair, as flat tensors; a
    generated word's cells are contiguous, NULL first."""

    def __init__(self, given_ids: torch.Tensor, given_len: torch.Tensor, given_vocab: int,
                 gen_ids: torch.Tensor, gen_len: torch.Tensor, gen_vocab: int) -> None:
        self.words = gen_ids.numel()
        sentence = torch.repeat_interleave(torch.arange(gen_len.numel()), gen_len)          # (words,)
        position = torch.arange(self.words) - _starts(gen_len)[sentence]                    # j, 0-based
        per_word = given_len[sentence] + 1                                                  # NULL + n
        self.word_of_cell = torch.repeat_interleave(torch.arange(self.words), per_word)     # (cells,)
        self.given_index = torch.arange(self.word_of_cell.numel()) - _starts(per_word)[self.word_of_cell] - 1
        is_null = self.given_index < 0                                                      # (cells,)
        given_at = _starts(given_len)[sentence][self.word_of_cell] + self.given_index
        given_word = torch.where(is_null, given_vocab, given_ids[given_at.clamp(min=0)])  # NULL: given_vocab
        self.prior = self._diagonal_prior(is_null, position, gen_len[sentence], given_len[sentence])
        self.keys, self.key_of_cell = torch.unique(given_word * gen_vocab + gen_ids[self.word_of_cell],
                                                   return_inverse=True)                    # (word pairs,), (cells,)
        self.given_of_key = self.keys // gen_vocab
        self.sentence_of_word, self.position = sentence, position

    def _diagonal_prior(self, is_null: torch.Tensor, position: torch.Tensor, gen_len: torch.Tensor,
                        given_len: torch.Tensor) -> torch.Tensor:
        """P_NULL for NULL, else (1 - P_NULL) · exp(-TENSION |i/n - j/m|) normalised over i."""
        w = self.word_of_cell
        distance = ((self.given_index + 1) / given_len[w] - (position[w] + 1) / gen_len[w]).abs()
        weight = torch.where(is_null, torch.zeros((), dtype=torch.float64),
                             torch.exp(-TENSION * distance.double()))
        weight = weight / _group_sum(w, weight, self.words)[w]
        return torch.where(is_null, torch.full_like(weight, P_NULL), (1 - P_NULL) * weight)

    def links(self, best_cell: torch.Tensor, pairs: int) -> list[set[Link]]:
        """Per pair, (given i, generated j) for the words whose best cell is not NULL."""
        result: list[set[Link]] = [set() for _ in range(pairs)]
        given = self.given_index[best_cell]
        for sentence, j, i in zip(self.sentence_of_word.tolist(), self.position.tolist(), given.tolist()):
            if i >= 0:
                result[sentence].add((i, j))
        return result


def _starts(lengths: torch.Tensor) -> torch.Tensor:
    """Where each of the concatenated runs of these lengths starts."""
    return torch.cumsum(lengths, 0) - lengths


def _group_sum(group: torch.Tensor, values: torch.Tensor, groups: int) -> torch.Tensor:
    return torch.zeros(groups, dtype=values.dtype).index_add_(0, group, values)


def _best_cell(group: torch.Tensor, values: torch.Tensor, groups: int) -> torch.Tensor:
    """The index of each group's largest value (the first one on ties)."""
    top = torch.full((groups,), -1.0, dtype=values.dtype).scatter_reduce(0, group, values, "amax")
    index = torch.arange(values.numel())
    candidates = torch.where(values >= top[group], index, torch.full_like(index, values.numel()))
    return torch.full((groups,), values.numel(), dtype=torch.long).scatter_reduce(0, group, candidates, "amin")


def _variational_bayes(counts: torch.Tensor, given_of_key: torch.Tensor, given_vocab: int) -> torch.Tensor:
    """t(generated | given) from expected counts with a Dirichlet(DIRICHLET_ALPHA) prior, as
    fast_align's variational Bayes: exp(ψ(count + α)) / exp(ψ(Σ count + α·V)); it keeps rare
    given words from taking many generated words ("garbage collection")."""
    totals = _group_sum(given_of_key, counts, given_vocab)
    generated_vocab = torch.bincount(given_of_key, minlength=given_vocab).double()
    return torch.exp(torch.special.digamma(counts + DIRICHLET_ALPHA)
                     - torch.special.digamma(totals + DIRICHLET_ALPHA * generated_vocab)[given_of_key])


NEIGHBOURS = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]


def grow_diag_final_and(forward: Iterable[Link], reverse: Iterable[Link], len_src: int, len_tgt: int) -> set[Link]:
    """Koehn's grow-diag-final-and (as in Moses): start from the intersection of the two
    directions, grow into neighbouring (also diagonal) union links that align a still unaligned
    word, then add forward and reverse links whose both words are still unaligned.

    Links are (source i, target j) in both arguments; `forward` has (at most) one link per target
    word, `reverse` one per source word. The sweep order (target outer, source inner, repeated
    until nothing is added) follows the reference pseudo-code, because the result depends on it.
    """
    forward, reverse = set(forward), set(reverse)
    union = forward | reverse
    alignment = forward & reverse
    aligned_src = {i for i, _ in alignment}
    aligned_tgt = {j for _, j in alignment}

    def add(i: int, j: int) -> None:
        alignment.add((i, j))
        aligned_src.add(i)
        aligned_tgt.add(j)

    added = True
    while added:
        added = False
        for j in range(len_tgt):
            for i in range(len_src):
                if (i, j) not in alignment:
                    continue
                for di, dj in NEIGHBOURS:
                    ni, nj = i + di, j + dj
                    if ((ni not in aligned_src or nj not in aligned_tgt) and (ni, nj) in union
                            and (ni, nj) not in alignment):
                        add(ni, nj)
                        added = True
    for direction in (forward, reverse):              # final-and: forward first, then reverse
        for j in range(len_tgt):
            for i in range(len_src):
                if (i, j) in direction and i not in aligned_src and j not in aligned_tgt:
                    add(i, j)
    return alignment
