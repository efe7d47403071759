"""Translator: the one API for translating and explaining with a model, whatever runs it.

`Translator.load` picks the runtime, so callers (the CLI, tests, benchmarks) hold no runtime
policy:
- a few sentences (at most FEW_SENTENCES, e.g. one SENTENCE argument): numpy_runtime, the model's
  arithmetic in NumPy, which skips torch's 1.1-1.5 s import (~25 ms a line with the shipped model);
- more, or an unknown number: torch_runtime, length-sorted batches (~650 lines/s once started).
Both give the same translations and attention (tests/test_numpy_runtime.py). What differs
between them is only the runtime protocol below: `search_ids` and `teacher_forced`; encoding,
decoding, blank lines, error positions and alignment assembly are shared here, and so is the
text handling of text.py: each line split into sentences (an over-long one at its clauses), the
model's input normalisation and output detokenization (config.json `info.text`), and the
characters read as <unk> (`unknown_characters`) and the source words the model's training corpus
lacked (`unseen_words`), for the CLI's notes. This module imports neither torch nor NumPy.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence, overload

from .alignment import Alignment, assemble_alignment, encode_target, own_translation
from .config import (CPU_PRECISIONS, DECODE_BATCH_TOKENS, DEFAULT_PRECISION, PRECISIONS, STREAM_CHUNK_LINES, check_batch_tokens,
                     check_beam, check_length_penalty)
from .errors import InputError, InputTooLongError, OptionError
from .model_info import ModelInfo, languages_of
from .modelfile import DEFAULT_MODEL, read_source_words, resolve_model_path
from .source_words import unseen
from .text import TextPipeline, clauses, sentences as split_sentences
from .tokenizer import UNK_ID, Tokenizer, encode_sentence

if TYPE_CHECKING:
    import numpy as np

# Up to this many sentences are translated by the NumPy runtime (~25 ms a line with the shipped
# model) instead of starting torch (~1.5 s, then ~650 lines/s): the same output, sooner.
FEW_SENTENCES = 32


class Translator:
    """Translate and explain with one model. Build it with `Translator.load`."""

    runtime = ""                  # "numpy" or "torch", for reports
    device = "cpu"                # where it runs: "cpu", or a GPU ("cuda:0") for the torch runtime
    name = ""                     # the model folder's name (set by `load`): its languages if info.text has none
    known_words: frozenset[str] | None = None   # the training sources' words (set by `load`), if the folder has them
    decode_batch_tokens = DECODE_BATCH_TOKENS    # the default batch_tokens (a GPU's is larger: torch_runtime.py)
    stream_chunk_lines = STREAM_CHUNK_LINES      # lines searched together by translate_stream

    def __init__(self, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, card: ModelInfo, precision: str) -> None:
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.default_beam, self.default_length_penalty = card.search.beam_size, card.search.length_penalty
        self.link_defaults = card.links
        self.precision = precision
        self.text = TextPipeline(card.text)      # info.text: how the training text was normalised
        self._corpus = card.corpus
        # the characters read as <unk> (sources and given targets) and the source words the training
        # corpus lacked (with known_words), in the order first seen, until the CLI notes and clears them
        self.unknown_characters: dict[str, None] = {}
        self.unseen_words: dict[str, None] = {}

    @staticmethod
    def load(name_or_dir: str | Path = DEFAULT_MODEL, threads: int = 0, precision: str = "auto",
             sentences: int | None = None, device: str = "auto") -> "Translator":
        """Load a model by folder or shipped name, on the runtime that suits `sentences` and `device`.

        `sentences`: how many sentences the caller will translate or align (None: many or
        unknown); a few run on the CPU in NumPy unless `device` names a GPU. `device` ("auto",
        "cpu", "cuda", "cuda:N"; devices.translation_device: "auto" with int8 is the CPU) and `threads` (0: all cores, or
        $OMP_NUM_THREADS) apply to the torch runtime. `precision` is the arithmetic of search's
        recurrent and output products: "int8" (~1.6x faster) or "float32" on the CPU, "float32",
        "float16" or "bfloat16" on a GPU; "auto" (the default) is int8 on the CPU and bfloat16
        (else float16) on a GPU. The attention that `align` shows is always the float model's,
        teacher-forced.
        """
        if threads < 0:
            raise OptionError(f"--threads must not be negative, got {threads}.")
        if precision not in PRECISIONS:
            raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
        directory = resolve_model_path(name_or_dir)
        translator: Translator
        few = sentences is not None and sentences <= FEW_SENTENCES
        if few and device in ("auto", "cpu") and precision in ("auto", *CPU_PRECISIONS):
            from .numpy_runtime import NumpyTranslator

            translator = NumpyTranslator(directory, DEFAULT_PRECISION if precision == "auto" else precision)
        else:
            from .torch_runtime import TorchTranslator

            translator = TorchTranslator.from_folder(directory, threads, precision, device)
        translator.name = directory.name
        translator.known_words = read_source_words(directory)
        return translator

    @staticmethod
    def for_lines(lines: Iterable[str], name_or_dir: str | Path = DEFAULT_MODEL, threads: int = 0,
                  precision: str = "auto", device: str = "auto") -> tuple["Translator", Iterator[str]]:
        """`load` for a stream of lines: reads ahead just enough to count a few; returns the
        translator and the same lines, all of them, to translate."""
        lines = iter(lines)
        head = list(itertools.islice(lines, FEW_SENTENCES + 1))
        translator = Translator.load(name_or_dir, threads, precision, len(head) if len(head) <= FEW_SENTENCES else None,
                                     device)
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

    def search_settings(self, beam_size: int | None, length_penalty: float | None,
                        batch_tokens: int | None = None) -> tuple[int, float, int]:
        """The beam size, length penalty and batch tokens to search with: the given ones, checked,
        else the model's (and the runtime's batch tokens)."""
        beam = self.default_beam if beam_size is None else beam_size
        check_beam(beam)
        if length_penalty is not None:
            check_length_penalty(length_penalty)
        if batch_tokens is not None:
            check_batch_tokens(batch_tokens)
        return (beam, self.default_length_penalty if length_penalty is None else length_penalty,
                self.decode_batch_tokens if batch_tokens is None else batch_tokens)

    @overload
    def translate(self, sentences: str, beam_size: int | None = None, length_penalty: float | None = None,
                  batch_tokens: int | None = None, *, split: bool = True) -> str: ...

    @overload
    def translate(self, sentences: Sequence[str], beam_size: int | None = None, length_penalty: float | None = None,
                  batch_tokens: int | None = None, *, split: bool = True) -> list[str]: ...

    def translate(self, sentences, beam_size=None, length_penalty=None, batch_tokens=None, *, split=True):
        """Translations of `sentences` (lines, each split into sentences unless `split` is False:
        see translate_stream), in order (one string: its translation, a string). An empty or
        blank one translates to ""."""
        if isinstance(sentences, str):
            return self.translate([sentences], beam_size, length_penalty, batch_tokens, split=split)[0]
        return list(self.translate_stream(sentences, beam_size, length_penalty, batch_tokens, chunk=len(sentences) or 1,
                                          split=split))

    def translate_stream(self, lines: Iterable[str], beam_size: int | None = None, length_penalty: float | None = None,
                         batch_tokens: int | None = None, chunk: int | None = None, source_name: str | None = None,
                         split: bool = True) -> Iterator[str]:
        """Translate an iterable of lines lazily, `chunk` lines at a time (None: the runtime's
        stream_chunk_lines), yielding one output per line. `batch_tokens` (source tokens x beam per
        batch; None: the runtime's decode_batch_tokens) bounds each search batch.

        With `split` (the default) each line is split into sentences (text.sentences), a sentence
        longer than the model takes is cut at its clauses, and the translations of a line's parts,
        decoded in the same batches as the other lines', are joined by a space; without it a line
        is read as one sentence. Each part is normalised as the model's training text was, and
        its output detokenized (info.text). A line that cannot be translated (too long even
        so, not UTF-8 text) stops the stream after the translations of the lines before it;
        with `source_name` the error names `source:line`.
        """
        beam, alpha, batch_tokens = self.search_settings(beam_size, length_penalty, batch_tokens)
        done = 0
        for pending in _chunks(lines, chunk or self.stream_chunk_lines):
            yield from self._translate_chunk(pending, beam, alpha, batch_tokens, done, source_name, split)
            done += len(pending)

    def _translate_chunk(self, lines: list[str], beam: int, alpha: float, batch_tokens: int,
                         lines_before: int, source_name: str | None, split: bool) -> Iterator[str]:
        encoded: list[list[int]] = []        # the sentences of every line, in order
        parts: list[int] = []                # how many of them each line has (0: a blank line)
        error: InputError | None = None
        for offset, line in enumerate(lines):
            try:
                line_parts = self._encode_line(line, split) if line.strip() else []
            except InputError as exc:
                where = f"{source_name}:{lines_before + offset + 1}: " if source_name else ""
                error = InputError(f"{where}{exc}")
                break
            encoded.extend(line_parts)
            parts.append(len(line_parts))
        outputs = iter(self.search_ids(encoded, beam, alpha, batch_tokens))
        for count in parts:
            texts = (self.text.output(self.tgt_tokenizer.decode(ids or [])) for ids in itertools.islice(outputs, count))
            yield " ".join(text for text in texts if text)
        if error is not None:
            raise error

    def _encode_line(self, line: str, split: bool) -> list[list[int]]:
        """Piece ids of each sentence of `line` (of the whole line without `split`)."""
        if not split:
            return self._encode_fitting(line, cut=False)
        return [ids for sentence in split_sentences(line, self.source_language) for ids in self._encode_fitting(sentence)]

    def _encode_fitting(self, sentence: str, cut: bool = True) -> list[list[int]]:
        """Piece ids of `sentence` (none if normalising leaves nothing, e.g. of control characters),
        or, if it is too long for the model and `cut`, of its clauses packed into as few parts as
        fit; a clause that alone is too long is refused, never shortened."""
        text = self.text.source(sentence)
        if not text.split():
            return []
        try:
            return [self.encode_source(text)[0]]
        except InputTooLongError as too_long:
            if not cut:
                raise
            refusal = InputTooLongError(f"{str(too_long).rstrip('.')}, and a clause of it is too long alone "
                                        "(no , ; : to cut it at): split it into shorter sentences.")
        packed: list[list[int]] = []
        group: list[str] = []                # the clauses of the part being packed, and its pieces
        group_ids: list[int] = []
        for clause in clauses(sentence):
            for candidate in ([*group, clause], [clause]):     # the clause joins the part, or starts the next
                try:
                    ids = self.encode_source(self.text.source(" ".join(candidate)))[0]
                    break
                except InputTooLongError:
                    continue
            else:
                raise refusal
            if len(candidate) == 1 and group:
                packed.append(group_ids)
            group, group_ids = candidate, ids
        packed.append(group_ids)
        return packed

    @cached_property
    def source_language(self) -> str | None:
        """The source language for the sentence splitter: info.text.lang, else the language pair
        in the training corpus's path or in the folder name (as `attncli models` shows them)."""
        if self.text.settings.lang:
            return self.text.settings.lang
        pair = languages_of(self._corpus, self.name)
        return pair[0] if pair else None

    def encode_source(self, text: str) -> tuple[list[int], list[int]]:
        """Piece ids of a source sentence (already normalised) and the word of each piece, as
        tokenizer.encode_sentence; the characters read as <unk> join `unknown_characters`, the
        words the training corpus lacked `unseen_words`."""
        ids, word_of_piece = encode_sentence(self.src_tokenizer, text)
        self._note_unknown(self.src_tokenizer, text.split(), ids, word_of_piece)
        if self.known_words is not None:         # a word with a character read as <unk> is in that note already
            self.unseen_words.update(dict.fromkeys(word for word in unseen(self.known_words, text)
                                                   if not any(char.casefold() in word for char in self.unknown_characters)))
        return ids, word_of_piece

    def _note_unknown(self, tokenizer: Tokenizer, words: Sequence[str], ids: Sequence[int],
                      word_of_piece: Sequence[int]) -> None:
        if UNK_ID in ids:
            for texts in tokenizer.unknown_words(words, ids, word_of_piece).values():
                self.unknown_characters.update(dict.fromkeys(char for text in texts for char in text))

    def align(self, source: str, target: str | None = None, beam_size: int | None = None,
              attention_shift: int = 0, length_penalty: float | None = None, normalize: bool = True) -> Alignment:
        """Attention between `source` and `target` (or the model's own translation of `source`,
        searched with `beam_size` and `length_penalty`, by default the model's).

        The attention is teacher-forced: the model reads the given target (or its own output)
        and we record, for each target piece, the attention used to predict it.
        """
        return self.align_batch([source], [target] if target is not None else None, beam_size, attention_shift,
                                length_penalty, normalize)[0]

    def align_batch(self, sources: Sequence[str], targets: Sequence[str] | None = None, beam_size: int | None = None,
                    attention_shift: int = 0, length_penalty: float | None = None,
                    normalize: bool = True) -> list[Alignment]:
        """`align` for many pairs at once.

        Words are the whitespace tokens of the source and of the given target, normalised as the
        model's training text was (info.text; `normalize=False` takes them as they are: a pairs
        file in the model's own tokenization, whose gold links count its tokens); for the model's
        own translation, the words are its output pieces grouped at word starts ("▁"). A piece
        read as <unk> is named with the text it stands for, "<unk:🐕>".
        """
        beam, alpha, batch_tokens = self.search_settings(beam_size, length_penalty)   # checked even when targets are given
        if not sources:
            return []
        if normalize:
            sources = [self.text.source(source) for source in sources]
            targets = None if targets is None else [self.text.target(target) for target in targets]
        src_encoded = [self.encode_source(source) for source in sources]
        if targets is None:
            searched = self.search_ids([ids for ids, _ in src_encoded], beam, alpha, batch_tokens)
            tgt_encoded = [own_translation(self.tgt_tokenizer, ids or []) for ids in searched]
        else:
            tgt_encoded = [encode_target(self.tgt_tokenizer, target) for target in targets]
            for target in tgt_encoded:
                self._note_unknown(self.tgt_tokenizer, target.words, target.ids, target.word_of_piece)
        forced = self.teacher_forced([ids for ids, _ in src_encoded], [target.ids for target in tgt_encoded])
        alignments = [assemble_alignment(source, src_ids, src_word_of, target, self.src_tokenizer, self.tgt_tokenizer,
                                         weights, log_probs, attention_shift)
                      for source, (src_ids, src_word_of), target, (weights, log_probs)
                      in zip(sources, src_encoded, tgt_encoded, forced)]
        for alignment, (src_ids, src_word_of), target in zip(alignments, src_encoded, tgt_encoded):
            # a piece read as <unk> is named by the text it stands for: <unk:🐕>
            alignment.src_pieces = self.src_tokenizer.marked_pieces(alignment.src_words, src_ids, src_word_of)
            if targets is not None:
                alignment.tgt_pieces = self.tgt_tokenizer.marked_pieces(target.words, target.ids, target.word_of_piece)
        return alignments


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
