"""The data of a training run: the encoded corpus (cached on disk, read pair by pair), the dev set,
the tokenizers, and the recipe for this corpus size.

`prepare_data` is the whole pipeline, run once before the first update; `make_training_batch`
turns the indices of one batch into tensors.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from . import corpus_passes
from .alignment import guide_attention, parse_pharaoh
from .batch import Batch, make_batch
from .checkpoint import file_fingerprint
from .config import TrainConfig
from .corpus import SentencePair, read_pairs
from .corpus_cache import BUILDING, CacheBuilder, EncodedPairs, cannot_write, default_root, find, pair_hashes, sha256
from .corpus_passes import SPM_SAMPLE_PAIRS
from .errors import CorpusError, OptionError
from .events import TrainEvent
from .recipe import complete_recipe
from .source_words import decoded, training_words, word_keys
from .subword_sampling import Resampler
from .tokenizer import Tokenizer
from .word_aligner import VERSION as ALIGNER_VERSION

WORDS_MAX_PAIRS = 2_000_000      # a larger corpus's model folder holds no source-words.txt (~2.5 s per 100k pairs)


@dataclass
class EncodedCorpus:
    """Pairs as piece ids in memory (the dev set)."""

    src: list[list[int]]
    tgt: list[list[int]]


@dataclass
class TrainingData:
    """A run's encoded training and dev pairs, its tokenizers, the dev references, and the run's
    config with the options left to the recipe chosen for this corpus (recipe.py)."""

    train: EncodedPairs
    dev: EncodedCorpus
    dev_references: list[str]
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    config: TrainConfig
    dev_pairs: list[SentencePair]
    resampler: Resampler | None = None     # --subword-sampling above 0: pairs drawn anew each update


def train_tokenizers(pairs: Sequence[SentencePair], config: TrainConfig,
                     fit_characters: bool = False) -> tuple[Tokenizer, Tokenizer]:
    """One joint SentencePiece model for both sides, or one per side. Every distinct character
    gets a piece; when the corpus has more characters than `config.vocab_size` (Chinese or
    Japanese text has thousands) and `fit_characters` (the recipe chose the size, not the user),
    SentencePiece is asked for a piece per character plus `config.vocab_size` more (a small
    corpus may get fewer)."""
    try:
        return _train_tokenizers(pairs, config.vocab_size, config.joint_vocab)
    except RuntimeError as exc:                 # SentencePiece reports bad settings as RuntimeError
        message = " ".join(str(exc).split())
    needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
    if needed and fit_characters:
        return _train_tokenizers(pairs, int(needed.group(1)) + config.vocab_size, config.joint_vocab)
    if needed:
        raise OptionError(f"--vocab-size must be at least {needed.group(1)} for this corpus "
                          f"(one piece per distinct character), got {config.vocab_size}.")
    raise OptionError(f"SentencePiece could not be trained with --vocab-size {config.vocab_size} ({message}).")


def _train_tokenizers(pairs: Sequence[SentencePair], vocab_size: int, joint: bool) -> tuple[Tokenizer, Tokenizer]:
    """SentencePiece trained on both sides (`joint`: one model, returned twice) or on each."""
    if joint:
        tokenizer = Tokenizer.train((text for pair in pairs for text in (pair.source, pair.target)), vocab_size)
        return tokenizer, tokenizer
    return (Tokenizer.train((pair.source for pair in pairs), vocab_size),
            Tokenizer.train((pair.target for pair in pairs), vocab_size))


def encode_corpus(pairs: Sequence[SentencePair], src_tok: Tokenizer, tgt_tok: Tokenizer) -> EncodedCorpus:
    """Piece ids of every pair, in memory (the dev set)."""
    return EncodedCorpus(src_tok.encode_batch([pair.source for pair in pairs]),
                         tgt_tok.encode_batch([pair.target for pair in pairs]))


def prepare_data(corpus_path: Path | str, dev_path: Path | str | None, guide_path: Path | str | None,
                 config: TrainConfig, tokenizers: tuple[Tokenizer, Tokenizer] | None,
                 on_event: Callable[[TrainEvent], None] = lambda event: None,
                 cache_dir: Path | str | None = None) -> TrainingData:
    """The run's data: the encoded corpus from the cache (corpus_cache.py), built first when no
    sound one fits (corpus_passes.py: count and sample, SentencePiece, encode), the dev pairs, and
    the config completed by the recipe for the corpus size. `on_event` hears "start", "data",
    "note" (the recipe chosen) and "warning" (what looks wrong with the data; training goes on).

    `tokenizers` are those of a resumed run or of the model being fine-tuned; None trains new ones.
    """
    corpus_path = Path(corpus_path)
    root = Path(cache_dir) if cache_dir is not None else default_root()
    given_dev = read_pairs(dev_path) if dev_path is not None else None
    guide_path = Path(guide_path) if guide_path is not None else None
    data = {"corpus": file_fingerprint(corpus_path), "guides": file_fingerprint(guide_path), "seed": config.seed,
            "max_len": config.max_len, "held_out_dev": given_dev is None, "spm_sample": SPM_SAMPLE_PAIRS}
    if guide_path is not None and config.aligner_guide:
        raise OptionError("give --guide-alignments or --aligner-guide, not both.")
    if guide_path is not None:
        config = dataclasses.replace(config, aligner_guide=False)      # the given links guide
    needs = CacheNeeds(_tokenizers_wanted(config, tokenizers), _guides_wanted(config, guide_path))
    found = find(root, data, needs.met_by, lambda message: on_event(TrainEvent("warning", message=message)))
    if found is None:
        on_event(TrainEvent("start", message=f"reading {corpus_path}"))
        found = _build_cache(corpus_path, guide_path, config, tokenizers, root, data, needs, on_event)
    else:
        on_event(TrainEvent("start", message=f"reusing the encoded corpus in {found[0]}"))
    folder, meta = found
    recipe_vocab = tokenizers is None and config.vocab_size is None
    config, recipe = complete_recipe(config, meta["train_pairs"])
    src_tok, tgt_tok = Tokenizer((folder / "src.spm").read_bytes()), Tokenizer((folder / "tgt.spm").read_bytes())
    pieces = max(len(src_tok), len(tgt_tok))
    if recipe_vocab and pieces > config.vocab_size:       # grown to fit the characters (train_tokenizers)
        recipe += (f"; the corpus has more distinct characters than {config.vocab_size:,}: "
                   f"vocabulary {pieces:,} (a piece for each character)")
        config = dataclasses.replace(config, vocab_size=pieces)
    config.validate()
    train = EncodedPairs.open(folder, meta)
    dev_pairs = given_dev if given_dev is not None else read_pairs(folder / "dev.tsv")
    dev = encode_corpus(dev_pairs, src_tok, tgt_tok)
    if recipe and tokenizers is not None:        # a resumed or fine-tuned run: the rest is fixed
        recipe += "; the vocabulary and architecture are those of the model it continues"
    if recipe:
        on_event(TrainEvent("note", message=recipe))
    pieces_made = len(tgt_tok) if tokenizers is None else None
    for warning in data_warnings(meta, train, dev, pieces_made, config.vocab_size, recipe_vocab):
        on_event(TrainEvent("warning", message=warning))
    resampler = Resampler(src_tok, tgt_tok, config.subword_sampling, config.max_len) if config.subword_sampling else None
    return TrainingData(train, dev, [pair.target for pair in dev_pairs], src_tok, tgt_tok, config, dev_pairs, resampler)


class CacheNeeds(NamedTuple):
    """What a cache must hold for a corpus of n training pairs: functions of n, because the
    recipe chooses by the corpus size, known only once the corpus is read."""

    tokenizers: Callable[[int], dict]             # _tokenizers_wanted
    guide_source: Callable[[int], str | None]     # _guides_wanted

    def met_by(self, meta: dict) -> bool:
        pairs = meta["train_pairs"]
        return self.tokenizers(pairs) == meta["tokenizers"] and self.guide_source(pairs) == meta.get("guide_source")


def _tokenizers_wanted(config: TrainConfig, tokenizers: tuple[Tokenizer, Tokenizer] | None) -> Callable[[int], dict]:
    """What a cache's SentencePiece models must be, for a corpus of n training pairs: these very
    models, or models trained with the vocabulary size the recipe chooses for n pairs (grown to
    fit the characters only when the recipe chose it: train_tokenizers)."""
    if tokenizers is not None:
        fixed = {"given": [sha256(tok.model_proto) for tok in tokenizers]}
        return lambda pairs: fixed
    return lambda pairs: {"trained": {"vocab_size": complete_recipe(config, pairs)[0].vocab_size,
                                      "joint_vocab": config.joint_vocab,
                                      "fit_characters": config.vocab_size is None}}


def _guides_wanted(config: TrainConfig, guide_path: Path | None) -> Callable[[int], str | None]:
    """Where a cache's guide links must come from, for a corpus of n training pairs: the
    --guide-alignments file, the built-in aligner (--aligner-guide, or the recipe's choice for
    n pairs), or nowhere (None)."""
    if guide_path is not None:
        return lambda pairs: "file"
    return lambda pairs: f"aligner {ALIGNER_VERSION}" if complete_recipe(config, pairs)[0].aligner_guide else None


def _build_cache(corpus_path: Path, guide_path: Path | None, config: TrainConfig,
                 tokenizers: tuple[Tokenizer, Tokenizer] | None, root: Path, data: dict,
                 needs: CacheNeeds, on_event: Callable[[TrainEvent], None]) -> tuple[Path, dict]:
    """Both passes over the corpus, SentencePiece trained between them when needed (and the
    built-in aligner when its links guide); the new cache."""
    scan = corpus_passes.scan(corpus_path, config.seed, data["held_out_dev"],
                              SPM_SAMPLE_PAIRS if tokenizers is None else 0, on_event)
    train_pairs = scan.pairs - len(scan.held_out)
    if needs.guide_source(train_pairs) is None or guide_path is not None:
        return _encode_cache(corpus_path, guide_path, scan, config, tokenizers, root, data, needs, on_event)
    try:
        root.mkdir(parents=True, exist_ok=True)
        workspace = tempfile.TemporaryDirectory(prefix=f"{BUILDING}{os.getpid()}-", dir=root)
    except OSError as exc:
        raise cannot_write(root, exc) from None
    with workspace as folder:
        links = Path(folder) / "aligner.links"
        corpus_passes.write_aligner_guides(corpus_path, scan, links, on_event)
        return _encode_cache(corpus_path, links, scan, config, tokenizers, root, data, needs, on_event)


def _encode_cache(corpus_path: Path, guide_path: Path | None, scan: corpus_passes.CorpusScan, config: TrainConfig,
                  tokenizers: tuple[Tokenizer, Tokenizer] | None, root: Path, data: dict,
                  needs: CacheNeeds, on_event: Callable[[TrainEvent], None]) -> tuple[Path, dict]:
    """Pass 2 (and SentencePiece before it when needed) into a new cache; its folder and meta."""
    train_pairs = scan.pairs - len(scan.held_out)
    if tokenizers is None:
        trained = needs.tokenizers(train_pairs)["trained"]   # the recipe's size for this corpus, or --vocab-size
        on_event(TrainEvent("start", message=f"training SentencePiece ({trained['vocab_size']:,} pieces, "
                                             f"{len(scan.sample):,} pairs)"))
        tokenizers = train_tokenizers(scan.sample, dataclasses.replace(config, vocab_size=trained["vocab_size"]),
                                      fit_characters=trained["fit_characters"])
    scan.sample.clear()                                   # SentencePiece has it; free it before encoding
    builder = CacheBuilder(root, max(len(tokenizer) for tokenizer in tokenizers), config.max_len, guide_path is not None)
    try:
        counts = corpus_passes.encode(corpus_path, scan, tokenizers, config.max_len, guide_path, builder, on_event)
        if counts.kept == 0:
            raise CorpusError(f"{corpus_path}: no pair is at most {config.max_len} pieces long (--max-len).")
    except BaseException:                                 # a bad guide line, Ctrl-C: nothing half-written stays
        builder.abort()
        raise
    meta = {"data": data, "tokenizers": needs.tokenizers(train_pairs), "guide_source": needs.guide_source(train_pairs),
            "train_pairs": train_pairs, "skipped": counts.skipped, "duplicates": counts.duplicates}
    held_out = list(scan.held_out.values()) if data["held_out_dev"] else None
    return builder.commit(meta, tokenizers[0].model_proto, tokenizers[1].model_proto, held_out)


SMALL_CORPUS = 1000          # fewer training pairs than this: warn
MOSTLY_DUPLICATES = 0.5      # fewer distinct pairs than this share: warn
UNSEEN_DEV_SHARE = 0.25      # this share of the dev sentences or more hold a word no training pair has: warn


def data_warnings(meta: dict, train: EncodedPairs, dev: EncodedCorpus,
                  pieces_made: int | None, vocab_size: int | None, recipe_vocab: bool = False) -> list[str]:
    """One line for each thing that makes a poor model likely; training goes on. `pieces_made`:
    the size of a vocabulary trained for this run (None when it came with a model or state);
    `recipe_vocab`: the recipe chose `vocab_size`, not --vocab-size."""
    warnings = []
    pairs = meta["train_pairs"]
    if pieces_made is not None and vocab_size is not None and pieces_made < vocab_size:
        asked = "the recipe chose" if recipe_vocab else "of --vocab-size"
        warnings.append(f"SentencePiece made {pieces_made:,} pieces, not the {vocab_size:,} "
                        f"{asked}: the corpus has too little text for more.")
    if pairs < SMALL_CORPUS:
        warnings.append(f"only {pairs:,} training pairs: expect a weak model "
                        f"(a few thousand pairs is already a small corpus).")
    if meta["duplicates"] > (1 - MOSTLY_DUPLICATES) * pairs:
        warnings.append(f"{meta['duplicates']:,} of {pairs:,} training pairs are duplicates.")
    shared = train.count_shared(pair_hashes(dev.src, dev.tgt))
    if shared:
        warnings.append(f"{shared:,} of {len(dev.src):,} dev pairs are also training pairs: "
                        "dev scores will look better than the model is.")
    return warnings


def make_training_batch(data: EncodedPairs, indices: Sequence[int], src_tok: Tokenizer, tgt_tok: Tokenizer,
                        resampling: tuple[Resampler, int] | None = None) -> Batch:
    """The batch of pairs `indices`, with guide attention when the corpus has guide alignments;
    with `resampling` (--subword-sampling: the run's Resampler and this update's seed), in
    segmentations drawn for this update."""
    src = [data.src(i) for i in indices]
    tgt = [data.tgt(i) for i in indices]
    if resampling is not None:
        resampler, update_seed = resampling
        src, tgt = resampler.pairs(indices, src, tgt, update_seed)
    if data.guide_text is None:
        return make_batch(src, tgt)
    guides = [guide_attention(parse_pharaoh(data.guide(i) or "")[1], src_tok.word_of_pieces(src[row]),
                              tgt_tok.word_of_pieces(tgt[row])) for row, i in enumerate(indices)]
    return make_batch(src, tgt, guides)


def corpus_words(train: EncodedPairs, src_tok: Tokenizer) -> frozenset[str] | None:
    """The words of the training sources (source_words.py), decoded from the encoded corpus as the
    model reads them; None above WORDS_MAX_PAIRS pairs (decoding them would hold up the start)
    or MAX_WORDS distinct words."""
    if len(train) > WORDS_MAX_PAIRS:
        return None
    return training_words(decoded(src_tok.decode_batch, (train.src(i) for i in range(len(train)))))


def unseen_dev_words_warning(words: frozenset[str], dev_sources: Sequence[str]) -> str | None:
    """A warning when at least UNSEEN_DEV_SHARE of the dev sentences hold a word that no training
    source has: the commonest limit of a small corpus, which no option lifts."""
    dev_words = [word_keys(source) for source in dev_sources]
    sentences = sum(1 for found in dev_words if any(word not in words for word in found))
    if not dev_sources or sentences < UNSEEN_DEV_SHARE * len(dev_sources):
        return None
    missing, total = sum(word not in words for found in dev_words for word in found), sum(map(len, dev_words))
    return (f"{sentences:,} of {len(dev_sources):,} dev sentences ({sentences / len(dev_sources):.0%}) hold a word no "
            f"training pair has ({missing:,} of the {total:,} dev words): the model can only guess such words, and "
            f"pairs that hold them would help more than any option.")

