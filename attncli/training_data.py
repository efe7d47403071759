"""The data of a training run: read, shuffle, split, tokenize and encode the corpus and dev set.

Everything here happens once, before the first update; `prepare_data` is the whole pipeline and
`make_training_batch` turns the indices of one batch into tensors.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .alignment import guide_attention, parse_pharaoh
from .batch import Batch, make_batch
from .config import TrainConfig
from .corpus import SentencePair, check_readable_file, decode_line, read_pairs
from .errors import CorpusError, OptionError
from .recipe import complete_recipe
from .tokenizer import Tokenizer


@dataclass
class EncodedCorpus:
    src: list[list[int]]
    tgt: list[list[int]]
    skipped: int = 0
    guides: list[str] | None = None   # Pharaoh links of each pair, for guided alignment


@dataclass
class TrainingData:
    """A run's encoded training and dev pairs, its tokenizers, the dev references, and the run's
    config with the options left to the recipe chosen for this corpus (recipe.py)."""

    train: EncodedCorpus
    dev: EncodedCorpus
    dev_references: list[str]
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    config: TrainConfig
    dev_pairs: list[SentencePair]


def train_tokenizers(pairs: Sequence[SentencePair], config: TrainConfig) -> tuple[Tokenizer, Tokenizer]:
    """One joint SentencePiece model for both sides, or one per side."""
    try:
        if config.joint_vocab:
            joint = Tokenizer.train((text for pair in pairs for text in (pair.source, pair.target)), config.vocab_size)
            return joint, joint
        src = Tokenizer.train((pair.source for pair in pairs), config.vocab_size)
        tgt = Tokenizer.train((pair.target for pair in pairs), config.vocab_size)
        return src, tgt
    except RuntimeError as exc:                 # SentencePiece reports bad settings as RuntimeError
        message = " ".join(str(exc).split())
        needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
        if needed:
            raise OptionError(f"--vocab-size must be at least {needed.group(1)} for this corpus "
                              f"(one piece per distinct character), got {config.vocab_size}.") from None
        raise OptionError(f"SentencePiece could not be trained with --vocab-size {config.vocab_size} ({message}).") from None


def encode_corpus(pairs: Sequence[SentencePair], src_tok: Tokenizer, tgt_tok: Tokenizer,
                  max_len: int | None = None, guides: Sequence[str] | None = None) -> EncodedCorpus:
    """Piece ids of every pair; pairs with a side longer than `max_len` pieces are left out."""
    src = src_tok.encode_batch([pair.source for pair in pairs])
    tgt = tgt_tok.encode_batch([pair.target for pair in pairs])
    keep = [i for i in range(len(src)) if max_len is None or (len(src[i]) <= max_len and len(tgt[i]) <= max_len)]
    return EncodedCorpus([src[i] for i in keep], [tgt[i] for i in keep], len(src) - len(keep),
                         [guides[i] for i in keep] if guides is not None else None)


def read_guides(path: Path | str, num_pairs: int) -> list[str]:
    """Guide alignments: one Pharaoh line (`i-j` source-target word links) per corpus pair."""
    path = Path(path)
    check_readable_file(path)
    lines = []
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, line_no)
            parse_pharaoh(line, f"{path}:{line_no}: ")
            lines.append(line)
    if len(lines) != num_pairs:
        raise CorpusError(f"{path}: has {len(lines)} lines but the corpus has {num_pairs} pairs (one line of links per pair).")
    return lines


def split_dev(pairs: list[SentencePair], fraction: float = 0.01, limit: int = 2000) -> tuple[list[SentencePair], list[SentencePair]]:
    """Hold out the last `fraction` (at most `limit`, at least 1) of shuffled pairs as dev."""
    size = max(1, min(limit, int(len(pairs) * fraction)))
    if len(pairs) < 2:
        raise CorpusError("the corpus needs at least two pairs to hold one out for --dev.")
    return pairs[:-size], pairs[-size:]


def prepare_data(corpus_path: Path | str, dev_path: Path | str | None, guide_path: Path | str | None,
                 config: TrainConfig, tokenizers: tuple[Tokenizer, Tokenizer] | None,
                 report: Callable[[str, str], None] = lambda kind, message: None) -> TrainingData:
    """Read, shuffle (seeded: the files are sorted by length), split off dev, choose the recipe,
    tokenize, encode. `report(kind, message)` hears what happens: kind "start" (what it is doing),
    "note" (the recipe chosen) or "warning" (what looks wrong with the data; training goes on).

    `tokenizers` are those of a resumed run or of the model being fine-tuned; None trains new ones.
    """
    report("start", f"reading {corpus_path}")
    train_pairs = read_pairs(corpus_path)
    guides = read_guides(guide_path, len(train_pairs)) if guide_path is not None else None
    order = list(range(len(train_pairs)))
    random.Random(config.seed).shuffle(order)
    train_pairs = [train_pairs[i] for i in order]
    guides = [guides[i] for i in order] if guides is not None else None
    if dev_path is None:
        train_pairs, dev_pairs = split_dev(train_pairs)
        guides = guides[: len(train_pairs)] if guides is not None else None
    else:
        dev_pairs = read_pairs(dev_path)
    config, recipe = complete_recipe(config, len(train_pairs))
    config.validate()
    notes = [("note", recipe)] if recipe else []            # told once the data is ready
    notes += [("warning", warning) for warning in data_warnings(train_pairs, dev_pairs)]
    if tokenizers is None:
        report("start", f"training SentencePiece ({config.vocab_size} pieces)")
        tokenizers = train_tokenizers(train_pairs, config)
        if len(tokenizers[1]) < config.vocab_size:
            notes.append(("warning", f"SentencePiece made {len(tokenizers[1]):,} pieces, not the {config.vocab_size:,} "
                                     "of --vocab-size: the corpus has too little text for more."))
    src_tok, tgt_tok = tokenizers
    train = encode_corpus(train_pairs, src_tok, tgt_tok, config.max_len, guides)
    if not train.src:
        raise CorpusError(f"{corpus_path}: no pair is at most {config.max_len} pieces long (--max-len).")
    for kind, message in notes:
        report(kind, message)
    return TrainingData(train, encode_corpus(dev_pairs, src_tok, tgt_tok), [pair.target for pair in dev_pairs],
                        src_tok, tgt_tok, config, dev_pairs)


SMALL_CORPUS = 1000          # fewer training pairs than this: warn
MOSTLY_DUPLICATES = 0.5      # fewer distinct pairs than this share: warn


def data_warnings(train_pairs: Sequence[SentencePair], dev_pairs: Sequence[SentencePair]) -> list[str]:
    """One line for each thing that makes a poor model likely; training goes on."""
    warnings = []
    if len(train_pairs) < SMALL_CORPUS:
        warnings.append(f"only {len(train_pairs):,} training pairs: expect a weak model "
                        f"(a few thousand pairs is already a small corpus).")
    distinct = set(train_pairs)
    if len(distinct) < MOSTLY_DUPLICATES * len(train_pairs):
        warnings.append(f"{len(train_pairs) - len(distinct):,} of {len(train_pairs):,} training pairs are duplicates.")
    shared = sum(pair in distinct for pair in dev_pairs)
    if shared:
        warnings.append(f"{shared:,} of {len(dev_pairs):,} dev pairs are also training pairs: "
                        "dev scores will look better than the model is.")
    return warnings


def make_training_batch(data: EncodedCorpus, indices: Sequence[int], src_tok: Tokenizer, tgt_tok: Tokenizer) -> Batch:
    """The batch of pairs `indices`, with guide attention when the corpus has guide alignments."""
    src = [data.src[i] for i in indices]
    tgt = [data.tgt[i] for i in indices]
    if data.guides is None:
        return make_batch(src, tgt)
    guides = [guide_attention(parse_pharaoh(data.guides[i])[1], src_tok.word_of_pieces(data.src[i]),
                              tgt_tok.word_of_pieces(data.tgt[i])) for i in indices]
    return make_batch(src, tgt, guides)
