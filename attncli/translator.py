"""Translator: a loaded model with its tokenizers behind `translate()` and `align()`.

This is the API the CLI, the tests and the benchmarks call.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from .alignment import Alignment, assemble_alignment, encode_target, own_translation, read_link_defaults
from .batch import bucketed_batches, make_batch
from .config import DECODE_BATCH_TOKENS, DEFAULT_PRECISION, PRECISIONS
from .errors import InputError, OptionError
from .modelfile import DEFAULT_MODEL, LoadedModel, load_model, resolve_model_path, search_defaults
from .search import search, teacher_forced_attention
from .search_decoder import SearchDecoder
from .tokenizer import encode_sentence


class Translator:
    """Translate and explain with one model."""

    def __init__(self, loaded: LoadedModel, precision: str = DEFAULT_PRECISION) -> None:
        self.model = loaded.model
        self.src_tokenizer = loaded.src_tokenizer
        self.tgt_tokenizer = loaded.tgt_tokenizer
        self.info = loaded.info
        self.default_beam, self.default_length_penalty = search_defaults(self.info)
        self.link_defaults = read_link_defaults(self.info)
        self.precision = precision

    @cached_property
    def search_decoder(self) -> SearchDecoder:
        """The decoder steps of translation, built on first use (`align` with targets needs none)."""
        return SearchDecoder(self.model.decoder, self.precision)

    @classmethod
    def load(cls, name_or_dir: str | Path = DEFAULT_MODEL, threads: int = 0,
             precision: str = DEFAULT_PRECISION) -> "Translator":
        """Load a model by folder or shipped name; `threads` 0 means all cores (or $OMP_NUM_THREADS).

        `precision` is the arithmetic of translation's recurrent and output products
        (search_decoder.py): "int8" (the default, ~1.6x faster) or "float32"; it also makes the
        translation that `align` explains when given no target. The attention that `align` shows
        is always the float model's, teacher-forced.
        """
        if threads < 0:
            raise OptionError(f"--threads must not be negative, got {threads}.")
        if precision not in PRECISIONS:
            raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
        if threads or not os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(threads or os.cpu_count() or 1)
        return cls(load_model(resolve_model_path(name_or_dir)), precision)

    def translate(self, sentences: Sequence[str], beam_size: int | None = None,
                  length_penalty: float | None = None, batch_tokens: int = DECODE_BATCH_TOKENS) -> list[str]:
        """Translations of `sentences`, in order. An empty or blank sentence translates to ""."""
        return list(self.translate_stream(sentences, beam_size, length_penalty, batch_tokens, chunk=len(sentences) or 1))

    def translate_stream(self, lines: Iterable[str], beam_size: int | None = None, length_penalty: float | None = None,
                         batch_tokens: int = DECODE_BATCH_TOKENS, chunk: int = 500, source_name: str | None = None) -> Iterator[str]:
        """Translate an iterable of lines lazily, `chunk` lines at a time, yielding one output per line.

        A line that cannot be translated (too long, not UTF-8 text) stops the stream after the
        translations of the lines before it; with `source_name` the error names `source:line`.
        """
        beam = self.default_beam if beam_size is None else beam_size
        alpha = self.default_length_penalty if length_penalty is None else length_penalty
        if beam < 1:
            raise OptionError(f"--beam must be at least 1, got {beam}.")
        pending: list[str] = []
        done = 0
        for line in lines:
            pending.append(line)
            if len(pending) >= chunk:
                yield from self._translate_chunk(pending, beam, alpha, batch_tokens, done, source_name)
                done += len(pending)
                pending = []
        if pending:
            yield from self._translate_chunk(pending, beam, alpha, batch_tokens, done, source_name)

    def _translate_chunk(self, lines: list[str], beam: int, alpha: float, batch_tokens: int,
                         lines_before: int, source_name: str | None) -> Iterator[str]:
        encoded: list[list[int] | None] = []
        error: InputError | None = None
        for offset, line in enumerate(lines):
            try:
                encoded.append(encode_sentence(self.src_tokenizer, line)[0] if line.strip() else None)
            except InputError as exc:
                where = f"{source_name}:{lines_before + offset + 1}: " if source_name else ""
                error = InputError(f"{where}{exc}")
                break
        for ids in self._search(encoded, beam, alpha, batch_tokens):
            yield "" if ids is None else self.tgt_tokenizer.decode(ids)
        if error is not None:
            raise error

    def _search(self, encoded: Sequence[list[int] | None], beam: int, alpha: float,
                batch_tokens: int = DECODE_BATCH_TOKENS) -> list[list[int] | None]:
        """Output piece ids for each encoded source (None stays None), in length-sorted batches."""
        outputs: list[list[int] | None] = [None] * len(encoded)
        todo = [i for i, ids in enumerate(encoded) if ids is not None]
        lengths = [len(encoded[i]) for i in todo]  # type: ignore[arg-type]
        for group in bucketed_batches(lengths, lengths, max(batch_tokens // beam, 64)):
            indices = [todo[g] for g in group]
            batch = make_batch([encoded[i] for i in indices])  # type: ignore[misc]
            for index, hyp in zip(indices, search(self.model, batch, beam, alpha, self.search_decoder)):
                outputs[index] = hyp.token_ids
        return outputs

    def align(self, source: str, target: str | None = None, beam_size: int | None = None,
              attention_shift: int = 0) -> Alignment:
        """Attention between `source` and `target` (or the model's own translation of `source`).

        The attention is teacher-forced: the model reads the given target (or its own output)
        and we record, for each target piece, the attention used to predict it.
        """
        return self.align_batch([source], [target] if target is not None else None, beam_size, attention_shift)[0]

    def align_batch(self, sources: Sequence[str], targets: Sequence[str] | None = None,
                    beam_size: int | None = None, attention_shift: int = 0) -> list[Alignment]:
        """`align` for many pairs at once (one teacher-forced batch).

        Words are the whitespace tokens of the source and of the given target; for the model's
        own translation, the words are its output pieces grouped at word starts ("▁").
        """
        src_encoded = [encode_sentence(self.src_tokenizer, source) for source in sources]
        if targets is None:
            beam = self.default_beam if beam_size is None else beam_size
            searched = self._search([ids for ids, _ in src_encoded], beam, self.default_length_penalty)
            tgt_encoded = [own_translation(self.tgt_tokenizer, ids or []) for ids in searched]
        else:
            tgt_encoded = [encode_target(self.tgt_tokenizer, target) for target in targets]
        batch = make_batch([ids for ids, _ in src_encoded], [target.ids for target in tgt_encoded])
        weights, log_probs = teacher_forced_attention(self.model, batch)
        return [assemble_alignment(source, src_ids, src_word_of, target, self.src_tokenizer, self.tgt_tokenizer,
                                   weights[row].numpy(), log_probs[row].numpy(), attention_shift)
                for row, (source, (src_ids, src_word_of), target) in enumerate(zip(sources, src_encoded, tgt_encoded))]
