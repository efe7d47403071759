"""Watching an alignment form during training (`attncli train --watch`).

At every validation the run records, for a few chosen sentences, the word-level attention of the
model as it is then: teacher-forced on the sentence's target (given with --watch-file, or the dev
reference when the source is a dev sentence), or on the model's own greedy translation at that
validation when there is none. The matrices go into the validation's history record (`"watch"`),
so they are saved with the training state (a resumed run records exactly what an uninterrupted
one would) and in the model's config.json; the sentences themselves are in `info.watch`.
JSON only, rounded to 4 decimals: a few sentences over a hundred validations take tens of kB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .alignment import encode_target, parse_pharaoh
from .corpus import SentencePair, check_readable_file, decode_line
from .errors import CorpusError, InputError, OptionError
from .tokenizer import Tokenizer, encode_sentence
from .model_info import WatchedPair   # info.watch's entries: the model card owns their JSON form

MAX_WATCHED = 8          # sentences: the records go into config.json
DECIMALS = 4


def watched_pairs(sources: Sequence[str], watch_file: Path | str | None) -> list[WatchedPair]:
    """The sentences to watch, checked before anything else runs: each --watch SOURCE (target
    still unknown), then the pairs of --watch-file (source<TAB>target[<TAB>gold links] per line)."""
    if any(not source.strip() for source in sources):
        raise OptionError("--watch: the sentence is empty.")
    pairs = [WatchedPair(source.strip(), None) for source in sources]
    if watch_file is not None:
        pairs += read_watch_file(Path(watch_file))
    if len(pairs) > MAX_WATCHED:
        raise OptionError(f"--watch/--watch-file: at most {MAX_WATCHED} sentences, got {len(pairs)}.")
    return pairs


def with_dev_references(pairs: Sequence[WatchedPair], dev_pairs: Sequence[SentencePair]) -> list[WatchedPair]:
    """A watched source without a target takes its dev reference when it is a dev sentence."""
    references = {pair.source: pair.target for pair in dev_pairs}
    return [WatchedPair(p.source, references.get(p.source), p.gold) if p.target is None else p for p in pairs]


def read_watch_file(path: Path) -> list[WatchedPair]:
    """source<TAB>target, optionally <TAB>gold Pharaoh links, per line; errors name path:line."""
    check_readable_file(path)
    pairs = []
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            fields = decode_line(raw, path, line_no).split("\t")
            if not any(field.strip() for field in fields):
                continue
            if len(fields) not in (2, 3) or not fields[0].strip() or not fields[1].strip():
                raise CorpusError(f"{path}:{line_no}: expected source<TAB>target (<TAB>gold links).")
            gold = fields[2].strip() if len(fields) == 3 else ""
            if gold:
                parse_pharaoh(gold, f"{path}:{line_no}: ")
            pairs.append(WatchedPair(fields[0].strip(), fields[1].strip(), gold or None))
    return pairs


def snapshot(translator, pairs: Sequence[WatchedPair]) -> list[dict[str, Any]]:
    """The word-level attention of each watched pair now: target words and weights
    (target words × source words + </s>), via `translator` (a Translator on the model in training)."""
    given = [pair for pair in pairs if pair.target is not None]
    own = [pair for pair in pairs if pair.target is None]
    aligned = dict(zip(given, translator.align_batch([p.source for p in given], [p.target for p in given],
                                                     beam_size=1, normalize=False) if given else []))
    aligned.update(zip(own, translator.align_batch([p.source for p in own], beam_size=1, normalize=False)
                       if own else []))
    return [{"target_words": aligned[pair].tgt_words,
             "weights": [[round(float(w), DECIMALS) for w in row] for row in aligned[pair].word_weights]}
            for pair in pairs]


def check_watch_lengths(pairs: Sequence[WatchedPair], src_tok: Tokenizer, tgt_tok: Tokenizer) -> None:
    """Refuse, before the first update, a watched sentence the model cannot read (too long)."""
    for pair in pairs:
        try:
            encode_sentence(src_tok, pair.source)
            if pair.target is not None:
                encode_target(tgt_tok, pair.target)
        except InputError as exc:
            raise OptionError(f"--watch {pair.source[:40]!r}: {exc}") from None
