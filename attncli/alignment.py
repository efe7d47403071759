"""From piece-level attention to word alignments, and their quality against gold (AER).

Merge rule (documented in the README): the weight between target word j and source word i is
the *sum* over the source word's pieces (attention mass that lands on the word) and the *mean*
over the target word's pieces (each piece of the word is one prediction). Each row therefore
still sums to 1, including the source EOS column, which is kept apart: attention on EOS means
"no source word in particular".

Tables (render.py) show a word's leading and trailing punctuation pieces as words of their own
(`table_words`, weights merged by the same rule); links, Pharaoh, JSON and AER keep whitespace words.

Link extraction: each target word links to the source word with the most weight. A target word
whose strongest weight is below `min_weight` gets no link (diffuse attention; precision), and
`mutual` keeps only links that are also the strongest from the source word's side.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from .corpus import check_readable_file, decode_line, iter_pairs
from .errors import AttncliError, CorpusError, InputError, OptionError
from .model_info import LinkSettings, ModelInfo   # LinkSettings: importable from here too
from .tokenizer import MAX_INPUT_PIECES, Tokenizer

if TYPE_CHECKING:
    from torch import Tensor

    from .translator import Translator

PharaohLinks = tuple[set[tuple[int, int]], set[tuple[int, int]]]   # (sure, possible) links of one pair


@dataclass
class Alignment:
    src_words: list[str]
    tgt_words: list[str]
    src_pieces: list[str]
    tgt_pieces: list[str]
    src_word_of_piece: list[int]
    tgt_word_of_piece: list[int]
    piece_weights: np.ndarray   # (tgt_pieces + 1, src_pieces + 1): rows add the EOS prediction, columns the source EOS
    word_weights: np.ndarray    # (tgt_words, src_words + 1): last column is the source EOS
    score: float            # teacher-forced log-probability of the target (pieces + EOS)
    attention_shift: int = 0    # word_weights row t is piece_weights row t + attention_shift

    def links(self, min_weight: float = 0.0, mutual: bool = False) -> list[tuple[int, int]]:
        """(source word, target word) pairs: each target word's most attended source word.

        `min_weight` drops the link of a target word whose strongest weight is below it.
        `mutual` keeps a link only if the target word is also the one that puts the largest share
        of its attention on that source word (the column's argmax after normalising each column),
        which trades recall for precision, like intersecting two alignment directions.
        """
        if not self.src_words or not self.tgt_words:
            return []
        weights = self.word_weights[:, : len(self.src_words)]                  # (tgt_words, src_words)
        strongest, source_of = weights.max(axis=1), weights.argmax(axis=1)     # (tgt_words,)
        if mutual:
            column_share = weights / np.maximum(weights.sum(axis=0, keepdims=True), 1e-9)
            target_of = column_share.argmax(axis=0)                             # (src_words,)
        result = []
        for j in range(len(self.tgt_words)):
            i = int(source_of[j])
            if float(strongest[j]) <= 0.0 or float(strongest[j]) < min_weight:
                continue
            if mutual and int(target_of[i]) != j:
                continue
            result.append((i, j))
        return sorted(result)


def merge_pieces(piece_weights: np.ndarray, src_word_of_piece: Sequence[int], tgt_word_of_piece: Sequence[int],
                 num_src_words: int, num_tgt_words: int) -> np.ndarray:
    """Word-level weights (tgt_words, src_words + 1) from piece-level weights.

    piece_weights (tgt_pieces, src_pieces + 1), the last column being the source EOS.
    Sum over a source word's pieces, mean over a target word's pieces.
    """
    src_map = np.zeros((len(src_word_of_piece) + 1, num_src_words + 1), np.float32)   # (src_pieces+1, src_words+1)
    src_map[np.arange(len(src_word_of_piece)), np.asarray(src_word_of_piece, dtype=np.int64)] = 1.0
    src_map[-1, -1] = 1.0                                                     # EOS stays EOS
    tgt_map = np.zeros((num_tgt_words, len(tgt_word_of_piece)), np.float32)   # (tgt_words, tgt_pieces)
    if tgt_word_of_piece:
        tgt_map[np.asarray(tgt_word_of_piece, dtype=np.int64), np.arange(len(tgt_word_of_piece))] = 1.0
        tgt_map = tgt_map / np.maximum(tgt_map.sum(axis=1, keepdims=True), 1.0)
    return tgt_map @ np.asarray(piece_weights, dtype=np.float32) @ src_map


def word_alignment(src_words: list[str], tgt_words: list[str], src_pieces: list[str], tgt_pieces: list[str],
                   src_word_of_piece: list[int], tgt_word_of_piece: list[int], piece_weights: np.ndarray,
                   score: float, attention_shift: int = 0) -> Alignment:
    """Build an Alignment; `attention_shift=1` explains piece t by the attention computed after
    reading it (the step that predicts t+1) instead of the one that predicted it."""
    rows = explaining_rows(piece_weights, len(tgt_pieces), attention_shift)
    word_weights = merge_pieces(rows, src_word_of_piece, tgt_word_of_piece, len(src_words), len(tgt_words))
    return Alignment(src_words, tgt_words, src_pieces, tgt_pieces, src_word_of_piece, tgt_word_of_piece,
                     piece_weights, word_weights, score, attention_shift)


def explaining_rows(piece_weights: np.ndarray, num_tgt_pieces: int, attention_shift: int) -> np.ndarray:
    """The rows of piece_weights that explain the target pieces, (tgt_pieces, src_pieces + 1): the
    step that predicted each piece, or with `attention_shift` 1 the step after reading it."""
    return piece_weights[attention_shift: attention_shift + num_tgt_pieces]


@dataclass(frozen=True)
class TableWords:
    """One side's words as the word table shows them: a whitespace word whose first or last pieces
    are punctuation alone ("dog." = ▁dog + .) is shown as its punctuation and the rest ("dog", "."),
    so that attention on the full stop is not read as attention on the dog. Links, gold, Pharaoh
    and JSON keep the whitespace words."""

    texts: list[str]              # one per shown word
    shown_of_piece: list[int]     # the shown word of each piece
    shown_of_word: list[int]      # each whitespace word's own shown word, punctuation aside: where its links are marked


def table_words(words: Sequence[str], pieces: Sequence[str], word_of_piece: Sequence[int]) -> TableWords:
    """Cut each word's leading and trailing punctuation pieces off; words without pieces (a
    recorded word matrix) are shown as they are."""
    texts: list[str] = []
    shown_of_piece, shown_of_word = [0] * len(pieces), []
    for index, word in enumerate(words):
        piece_indices = [i for i, w in enumerate(word_of_piece) if w == index]
        parts, own = word_parts(word, [pieces[i] for i in piece_indices])
        shown_of_word.append(len(texts) + own)
        pieces_left = iter(piece_indices)
        for text, count in parts:
            for i in itertools.islice(pieces_left, count):
                shown_of_piece[i] = len(texts)
            texts.append(text)
    return TableWords(texts, shown_of_piece, shown_of_word)


def word_parts(word: str, pieces: Sequence[str]) -> tuple[list[tuple[str, int]], int]:
    """One word as shown: its parts [(text, number of pieces)] and the index of the word itself among
    them. A leading or trailing run of pieces that are punctuation alone is a part of its own when
    its text is where the word starts or ends ("¿Dónde" = ▁¿ D ónde: "¿", "Dónde")."""
    lead = _punctuation_run(pieces)
    trail = _punctuation_run(pieces[lead:][::-1])
    head = "".join(pieces[:lead]).replace("▁", "")
    tail = "".join(pieces[len(pieces) - trail:]).replace("▁", "") if trail else ""
    if not (word.startswith(head) and word.endswith(tail) and len(head) + len(tail) < len(word)):
        return [(word, len(pieces))], 0
    lead = lead if head else 0                   # a lone "▁" piece stays with the word
    parts = [(head, lead)] if head else []
    parts.append((word[len(head): len(word) - len(tail)], len(pieces) - lead - trail))
    return parts + ([(tail, trail)] if tail else []), 1 if head else 0


def _punctuation_run(pieces: Sequence[str]) -> int:
    """How many of the first pieces are punctuation alone (a word-start mark "▁" aside)."""
    run = 0
    for piece in pieces:
        if not all(unicodedata.category(char).startswith("P") for char in piece.replace("▁", "")):
            break
        run += 1
    return run


def table_weights(alignment: Alignment, src: TableWords, tgt: TableWords) -> np.ndarray:
    """Weights (tgt shown words, src shown words + 1), merged from the pieces as word_weights are
    (sum over source pieces, mean over target pieces); word_weights where there are no pieces."""
    if not alignment.src_pieces or not alignment.tgt_pieces:
        return alignment.word_weights
    rows = explaining_rows(alignment.piece_weights, len(alignment.tgt_pieces), alignment.attention_shift)
    return merge_pieces(rows, src.shown_of_piece, tgt.shown_of_piece, len(src.texts), len(tgt.texts))


@dataclass(frozen=True)
class TargetPieces:
    """The target side of an alignment: piece ids, the word of each piece, and the words."""

    ids: list[int]
    word_of_piece: list[int]
    words: list[str]


def encode_target(tokenizer: Tokenizer, target: str) -> TargetPieces:
    """A given translation: its whitespace words, encoded word by word; refuses too long targets."""
    words = target.split()
    ids, word_of_piece = tokenizer.encode_words(words)
    if len(ids) > MAX_INPUT_PIECES:
        raise InputError(f"the target is too long ({len(ids)} pieces; the limit is {MAX_INPUT_PIECES}).")
    return TargetPieces(ids, word_of_piece, words)


def own_translation(tokenizer: Tokenizer, ids: list[int]) -> TargetPieces:
    """The model's own output pieces, grouped into words at word starts ("▁")."""
    words, word_of_piece = tokenizer.words_of_pieces(ids)
    return TargetPieces(ids, word_of_piece, words)


def assemble_alignment(source: str, src_ids: list[int], src_word_of_piece: list[int], target: TargetPieces,
                       src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, weights: np.ndarray,
                       log_probs: np.ndarray, attention_shift: int = 0) -> Alignment:
    """The Alignment of one teacher-forced pair: weights (>= tgt_pieces + 1, >= src_pieces + 1) and
    log_probs (>= tgt_pieces + 1,) of its padded batch row, cut to the pair's own size."""
    rows, columns = len(target.ids) + 1, len(src_ids) + 1
    return word_alignment(
        src_words=source.split(), tgt_words=target.words,
        src_pieces=src_tokenizer.pieces(src_ids), tgt_pieces=tgt_tokenizer.pieces(target.ids),
        src_word_of_piece=src_word_of_piece, tgt_word_of_piece=target.word_of_piece,
        piece_weights=np.asarray(weights[:rows, :columns], dtype=np.float32),
        score=float(np.asarray(log_probs[:rows], dtype=np.float64).sum()), attention_shift=attention_shift)


def read_link_defaults(info: ModelInfo | dict[str, Any]) -> LinkSettings:
    """The link settings a model was tuned with (config.json info.alignment_links), else the plain ones."""
    return ModelInfo.coerce(info).links


def guide_attention(links: Iterable[tuple[int, int]], src_word_of_piece: Sequence[int],
                    tgt_word_of_piece: Sequence[int]) -> "Tensor | None":
    """Target attention for guided-alignment training, from word links (source i, target j).

    Row t (the prediction of target piece t) spreads its mass evenly over the pieces of the
    source words linked to t's word; a target word without links gets a zero row (no guide).
    Returns (tgt_pieces, src_pieces), or None when no link falls inside the sentence.
    """
    import torch        # training only: the rest of this module stays importable without torch

    num_src_words = max(src_word_of_piece, default=-1) + 1
    num_tgt_words = max(tgt_word_of_piece, default=-1) + 1
    word_links = torch.zeros(num_tgt_words, num_src_words)
    for i, j in links:
        if i < num_src_words and j < num_tgt_words:
            word_links[j, i] = 1.0
    if not bool(word_links.any()):
        return None
    pieces = word_links[torch.tensor(list(tgt_word_of_piece))][:, torch.tensor(list(src_word_of_piece))]
    return pieces / pieces.sum(dim=1, keepdim=True).clamp(min=1.0)          # (tgt_pieces, src_pieces)


def format_pharaoh(links: Iterable[tuple[int, int]]) -> str:
    return " ".join(f"{i}-{j}" for i, j in links)


def parse_pharaoh(line: str, where: str = "") -> PharaohLinks:
    """Sure and possible links of one Pharaoh line: `i-j` sure, `ipj` (or `i?j`) possible; P includes S."""
    sure, possible = set(), set()
    for token in line.split():
        for mark in ("-", "p", "?"):
            left, sep, right = token.partition(mark)
            if sep and left.isdigit() and right.isdigit():
                link = (int(left), int(right))
                possible.add(link)
                if mark == "-":
                    sure.add(link)
                break
        else:
            raise CorpusError(f"{where}expected links like 0-1 or 0p1, found '{token}'.")
    return sure, possible


def check_gold_links(gold: PharaohLinks, alignment: Alignment, where: str = "",
                     error: type[AttncliError] = OptionError) -> None:
    """Refuse a gold link (source word i, target word j) outside the aligned pair's words: gold
    written for another sentence, translation or tokenisation would mark the wrong cells."""
    sure, possible = gold
    for i, j in sorted(possible | sure):
        if i >= len(alignment.src_words) or j >= len(alignment.tgt_words):
            link = f"{i}{'-' if (i, j) in sure else 'p'}{j}"
            raise error(f"{where}link {link} is outside the pair ({len(alignment.src_words)} source words "
                        f"0-{len(alignment.src_words) - 1}, {len(alignment.tgt_words)} target words "
                        f"0-{len(alignment.tgt_words) - 1}).")


def read_pharaoh_lines(path: Path) -> list[str]:
    """The lines of a Pharaoh file, decoded as UTF-8 (a bad byte is an error naming the line)."""
    check_readable_file(path)
    with open(path, "rb") as handle:
        return [decode_line(raw, path, line_no) for line_no, raw in enumerate(handle, 1)]


def align_file(translator: "Translator", pairs_path: Path, gold_path: Optional[Path] = None,
               attention_shift: int = 0, batch_size: int = 32) -> Iterator[tuple[Alignment, Optional[PharaohLinks]]]:
    """Teacher-forced alignment of every pair of a source<TAB>target file, streamed `batch_size`
    pairs at a time, each with its gold links from the same line of `gold_path` (if given). The
    pairs are read as they are, in the model's own tokenization (as gold alignments count the
    file's tokens): the model's input normalisation (info.text) is not applied to them."""
    if batch_size < 1:
        raise OptionError(f"--batch-size must be at least 1, got {batch_size}.")
    gold_lines = read_pharaoh_lines(gold_path) if gold_path is not None else None
    pairs = iter_pairs(pairs_path)
    index = 0
    while chunk := list(itertools.islice(pairs, batch_size)):
        alignments = translator.align_batch([p.source for p in chunk], [p.target for p in chunk],
                                            attention_shift=attention_shift, normalize=False)
        for alignment in alignments:
            gold = None
            if gold_lines is not None:
                if index >= len(gold_lines):
                    raise CorpusError(f"{gold_path}: has fewer lines than {pairs_path}.")
                gold = parse_pharaoh(gold_lines[index], f"{gold_path}:{index + 1}: ")
                check_gold_links(gold, alignment, f"{gold_path}:{index + 1}: ", CorpusError)
            yield alignment, gold
            index += 1


def align_lines(translator: "Translator", lines: Iterable[str], source_name: str, beam_size: int | None = None,
                length_penalty: float | None = None, attention_shift: int = 0,
                batch_size: int = 32) -> Iterator[Optional[Alignment]]:
    """The alignment of each line with the model's own translation (None for a blank line), aligned
    `batch_size` lines at a time. A line that cannot be aligned (too long, not text) stops the
    stream after the alignments of the lines before it, naming `source_name:line`."""
    if batch_size < 1:
        raise OptionError(f"--batch-size must be at least 1, got {batch_size}.")
    translator.align_batch([], None, beam_size, attention_shift, length_penalty)    # check the options first
    lines, done = iter(lines), 0
    while chunk := list(itertools.islice(lines, batch_size)):
        try:
            aligned = iter(translator.align_batch([line for line in chunk if line.strip()], None, beam_size,
                                                  attention_shift, length_penalty))
        except InputError:          # one line at a time, to name the line after aligning those before it
            aligned = None
        for offset, line in enumerate(chunk):
            if not line.strip():
                yield None
            elif aligned is not None:
                yield next(aligned)
            else:
                try:
                    yield translator.align(line, None, beam_size, attention_shift, length_penalty)
                except InputError as exc:
                    raise InputError(f"{source_name}:{done + offset + 1}: {exc}") from None
        done += len(chunk)


@dataclass
class AlignmentScore:
    aer: float
    precision: float
    recall: float
    predicted: int = 0
    sure: int = 0
    possible: int = 0
    sentences: int = 0
    counts: dict = field(default_factory=dict)


def score_alignments(gold: Sequence[tuple[set, set]], predicted: Sequence[set]) -> AlignmentScore:
    """AER, precision and recall over a corpus (Och & Ney 2003):
    precision = |A∩P|/|A|, recall = |A∩S|/|S|, AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|)."""
    if len(gold) != len(predicted):
        raise CorpusError(f"the gold file has {len(gold)} lines but the alignments have {len(predicted)}.")
    a_and_s = a_and_p = size_a = size_s = size_p = 0
    for (sure, possible), links in zip(gold, predicted):
        possible = possible | sure
        a_and_s += len(links & sure)
        a_and_p += len(links & possible)
        size_a += len(links)
        size_s += len(sure)
        size_p += len(possible)
    if size_a + size_s == 0:
        raise CorpusError("no links to score: the gold has no sure links and the prediction no links.")
    precision = a_and_p / size_a if size_a else 0.0
    recall = a_and_s / size_s if size_s else 0.0
    aer = 1.0 - (a_and_s + a_and_p) / (size_a + size_s) if size_a + size_s else 0.0
    return AlignmentScore(aer, precision, recall, size_a, size_s, size_p, len(gold))


def score_alignment_files(gold_path: Path, hypothesis_path: Path) -> AlignmentScore:
    """`score_alignments` of a predicted Pharaoh file against a gold one, line by line."""
    for path in (gold_path, hypothesis_path):
        check_readable_file(path)
    gold = [parse_pharaoh(line, f"{gold_path}:{n}: ") for n, line in enumerate(read_pharaoh_lines(gold_path), 1)]
    predicted = [parse_pharaoh(line, f"{hypothesis_path}:{n}: ")[1]
                 for n, line in enumerate(read_pharaoh_lines(hypothesis_path), 1)]
    if len(predicted) != len(gold):
        raise CorpusError(f"{hypothesis_path} has {len(predicted)} lines but {gold_path} has {len(gold)}.")
    if not any(sure for sure, _ in gold) and not any(predicted):
        raise CorpusError(f"no links to score: {gold_path} has no sure links and {hypothesis_path} no links.")
    return score_alignments(gold, predicted)
