"""Translator: the one API for translating and explaining with a model, whatever runs it.

`Translator.load` picks the runtime, so callers (the CLI, tests, benchmarks) hold no runtime
policy:
- a few sentences (at most FEW_SENTENCES, e.g. one SENTENCE argument): numpy_runtime, the model's
  arithmetic in NumPy, which skips torch's 1.1-1.5 s import (~25 ms a line with the shipped model);
- more, or an unknown number: torch_runtime, length-sorted batches (~650 lines/s once started).
Both give the same translations and attention (tests/test_numpy_runtime.py). What differs
between them is only the runtime protocol below: `search_ids` and `teacher_forced`; encoding,
decoding, blank lines, error positions and alignment assembly are shared here. This module
imports neither torch nor NumPy.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from .alignment import Alignment, assemble_alignment, encode_target, own_translation, read_link_defaults
from .config import DECODE_BATCH_TOKENS, DEFAULT_PRECISION, PRECISIONS, check_beam
from .errors import InputError, OptionError
from .modelfile import DEFAULT_MODEL, resolve_model_path, search_defaults
from .tokenizer import Tokenizer, encode_sentence

if TYPE_CHECKING:
    import numpy as np

# Up to this many sentences are translated by the NumPy runtime (~25 ms a line with the shipped
# model) instead of starting torch (~1.5 s, then ~650 lines/s): the same output, sooner.
FEW_SENTENCES = 32


class Translator:
    """Translate and explain with one model. Build it with `Translator.load`."""

    runtime = ""                  # "numpy" or "torch", for reports

    def __init__(self, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, info: dict[str, Any], precision: str) -> None:
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.info = info
        self.default_beam, self.default_length_penalty = search_defaults(info)
        self.link_defaults = read_link_defaults(info)
        self.precision = precision

    @staticmethod
    def load(name_or_dir: str | Path = DEFAULT_MODEL, threads: int = 0, precision: str = DEFAULT_PRECISION,
             sentences: int | None = None) -> "Translator":
        """Load a model by folder or shipped name, on the runtime that suits `sentences`.

        `sentences`: how many sentences the caller will translate or align (None: many or
        unknown). `threads` (0: all cores, or $OMP_NUM_THREADS) applies to the torch runtime.
        `precision` is the arithmetic of search's recurrent and output products: "int8" (the
        default, ~1.6x faster) or "float32". The attention that `align` shows is always the
        float model's, teacher-forced.
        """
        if threads < 0:
            raise OptionError(f"--threads must not be negative, got {threads}.")
        if precision not in PRECISIONS:
            raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
        directory = resolve_model_path(name_or_dir)
        if sentences is not None and sentences <= FEW_SENTENCES:
            from .numpy_runtime import NumpyTranslator

            return NumpyTranslator(directory, precision)
        from .torch_runtime import TorchTranslator

        return TorchTranslator.from_folder(directory, threads, precision)

    @staticmethod
    def for_lines(lines: Iterable[str], name_or_dir: str | Path = DEFAULT_MODEL, threads: int = 0,
                  precision: str = DEFAULT_PRECISION) -> tuple["Translator", Iterator[str]]:
        """`load` for a stream of lines: reads ahead just enough to count a few; returns the
        translator and the same lines, all of them, to translate."""
        lines = iter(lines)
        head = list(itertools.islice(lines, FEW_SENTENCES + 1))
        translator = Translator.load(name_or_dir, threads, precision, len(head) if len(head) <= FEW_SENTENCES else None)
        return translator, itertools.chain(head, lines)

    # -- the runtime protocol -------------------------------------------------------------------

    def search_ids(self, encoded: Sequence[list[int] | None], beam: int, alpha: float,
                   batch_tokens: int) -> list[list[int] | None]:
        """Output piece ids for each encoded source (pieces without EOS; None stays None)."""
        raise NotImplementedError

    def teacher_forced(self, sources: Sequence[list[int]], targets: Sequence[list[int]]) -> list[tuple["np.ndarray", "np.ndarray"]]:
        """For each pair (pieces without EOS), the float32 model reading BOS + target: attention
        weights (≥ len(target) + 1, ≥ len(source) + 1), row t the attention that predicted piece t,
        and the log-probabilities (≥ len(target) + 1,) of the target pieces and the final EOS.
        (Rows and columns beyond those are padding.)"""
        raise NotImplementedError

    # -- shared by every runtime ----------------------------------------------------------------

    def _search_settings(self, beam_size: int | None, length_penalty: float | None) -> tuple[int, float]:
        beam = self.default_beam if beam_size is None else beam_size
        check_beam(beam)
        return beam, self.default_length_penalty if length_penalty is None else length_penalty

    def translate(self, sentences: Sequence[str], beam_size: int | None = None,
                  length_penalty: float | None = None, batch_tokens: int = DECODE_BATCH_TOKENS) -> list[str]:
        """Translations of `sentences`, in order. An empty or blank sentence translates to ""."""
        if isinstance(sentences, str):
            raise TypeError("translate takes a list of sentences; for one, use translate([sentence])[0].")
        return list(self.translate_stream(sentences, beam_size, length_penalty, batch_tokens, chunk=len(sentences) or 1))

    def translate_stream(self, lines: Iterable[str], beam_size: int | None = None, length_penalty: float | None = None,
                         batch_tokens: int = DECODE_BATCH_TOKENS, chunk: int = 500, source_name: str | None = None) -> Iterator[str]:
        """Translate an iterable of lines lazily, `chunk` lines at a time, yielding one output per line.

        A line that cannot be translated (too long, not UTF-8 text) stops the stream after the
        translations of the lines before it; with `source_name` the error names `source:line`.
        """
        beam, alpha = self._search_settings(beam_size, length_penalty)
        done = 0
        for pending in _chunks(lines, chunk):
            yield from self._translate_chunk(pending, beam, alpha, batch_tokens, done, source_name)
            done += len(pending)

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
        for ids in self.search_ids(encoded, beam, alpha, batch_tokens):
            yield "" if ids is None else self.tgt_tokenizer.decode(ids)
        if error is not None:
            raise error

    def align(self, source: str, target: str | None = None, beam_size: int | None = None,
              attention_shift: int = 0) -> Alignment:
        """Attention between `source` and `target` (or the model's own translation of `source`).

        The attention is teacher-forced: the model reads the given target (or its own output)
        and we record, for each target piece, the attention used to predict it.
        """
        return self.align_batch([source], [target] if target is not None else None, beam_size, attention_shift)[0]

    def align_batch(self, sources: Sequence[str], targets: Sequence[str] | None = None,
                    beam_size: int | None = None, attention_shift: int = 0) -> list[Alignment]:
        """`align` for many pairs at once.

        Words are the whitespace tokens of the source and of the given target; for the model's
        own translation, the words are its output pieces grouped at word starts ("▁").
        """
        if beam_size is not None:
            check_beam(beam_size)
        src_encoded = [encode_sentence(self.src_tokenizer, source) for source in sources]
        if targets is None:
            beam, _ = self._search_settings(beam_size, None)
            searched = self.search_ids([ids for ids, _ in src_encoded], beam, self.default_length_penalty,
                                       DECODE_BATCH_TOKENS)
            tgt_encoded = [own_translation(self.tgt_tokenizer, ids or []) for ids in searched]
        else:
            tgt_encoded = [encode_target(self.tgt_tokenizer, target) for target in targets]
        forced = self.teacher_forced([ids for ids, _ in src_encoded], [target.ids for target in tgt_encoded])
        return [assemble_alignment(source, src_ids, src_word_of, target, self.src_tokenizer, self.tgt_tokenizer,
                                   weights, log_probs, attention_shift)
                for source, (src_ids, src_word_of), target, (weights, log_probs)
                in zip(sources, src_encoded, tgt_encoded, forced)]


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
