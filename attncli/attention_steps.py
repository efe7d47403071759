"""One decoder step of Luong attention with its numbers, for `attncli inspect step`.

The model reads the source and, teacher-forced, the target up to the piece in question (the
given --target, or its own beam-search translation as `inspect alignment` reads it back); at the
step that predicts that piece we keep every quantity of attention.py's five steps: h_t, the
scores against each projected encoder state h̄_s, the softmax weights, c_t, [c_t; h_t], h̃_t, and
the output layer's most probable next pieces (`explain_steps`: every step of the translation,
for the page of `inspect step --save`). They come from numpy_runtime's `AttentionStep`,
the same arithmetic (float32, the model's own) that gives `inspect alignment` its weights, so the
weights here are that table's row for the piece.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from .alignment import TargetPieces, encode_target, own_translation
from .config import check_beam
from .errors import OptionError
from .tokenizer import EOS_ID
from .translator import Translator

if TYPE_CHECKING:
    from .numpy_runtime import NumpySeq2Seq

EOS_PIECE = "</s>"
BOS_PIECE = "<s>"
TOP_PIECES = 5


@dataclass
class StepExplanation:
    """Every number of one attention step; vectors are float32 as the model computed them."""

    source_pieces: list[str]           # the source pieces and "</s>": one per encoder state
    target_pieces: list[str]           # the target pieces and "</s>" (the model's final prediction)
    target_words: list[str]
    target_word_of_piece: list[int]    # the word of each target piece (not of </s>)
    piece_index: int                   # the step: it predicts target_pieces[piece_index]
    word_index: Optional[int]          # the target word of that piece (None for the final </s>)
    previous_piece: str                # what the decoder read at this step: <s> or the piece before
    given: bool                        # the target came from --target (not the model's own search)
    decoder_state: np.ndarray          # (hidden,) h_t, the top decoder layer's state
    encoder_states: np.ndarray         # (src_len, hidden) h̄_s, the encoder states projected to the decoder size
    scores: np.ndarray                 # (1) (src_len,) h_t · h̄_s
    weights: np.ndarray                # (2) (src_len,) softmax(scores)
    context: np.ndarray                # (3) (hidden,) c_t = weights @ encoder_states
    combined: np.ndarray               # (4) (2*hidden,) [c_t; h_t]
    attentional: np.ndarray            # (5) (hidden,) h̃_t = tanh(W_c [c_t; h_t] (+ b_c))
    combine_bias: Optional[np.ndarray] # b_c (hidden,), or None (Luong's W_c has no bias)
    lexical: Optional[np.ndarray]      # (embed,) l_t of the lexical model (lexical.py), or None without one
    probabilities: np.ndarray          # (tgt_vocab,) softmax(W_o h̃_t + b_o (+ W_lex l_t)), the next-piece distribution
    top: list[tuple[str, float]]       # the TOP_PIECES most probable next pieces, best first
    chosen: str                        # target_pieces[piece_index]
    chosen_probability: float
    chosen_rank: int                   # 1 = the most probable piece

    @property
    def context_shares(self) -> np.ndarray:
        """How much of c_t each source piece contributes: a_t(s) (h̄_s · c_t) / (c_t · c_t).
        They add up to 1 (c_t · c_t = Σ_s a_t(s) h̄_s · c_t); a piece can have a negative share."""
        norm = float(self.context @ self.context)
        if norm == 0.0:
            return np.zeros_like(self.weights)
        return self.weights * (self.encoder_states @ self.context) / np.float32(norm)


def check_step_options(sentence: str, word: Optional[int], piece: Optional[int], target: Optional[str]) -> None:
    """Refuse what `inspect step` cannot explain, before the model is loaded."""
    check_step_texts(sentence, target)
    if word is not None and piece is not None:
        raise OptionError("give either --word N or --piece N, not both.")
    if word is None and piece is None:
        raise OptionError("give --word N (a target word, 0-based) or --piece N (a target piece).")
    for option, value in (("--word", word), ("--piece", piece)):
        if value is not None and value < 0:
            raise OptionError(f"{option} must be 0 or more, got {value}.")


def check_step_texts(sentence: str, target: Optional[str]) -> None:
    """Refuse an empty source sentence or --target."""
    if not sentence.split():
        raise OptionError("SENTENCE is empty: give the source sentence whose step to show.")
    if target is not None and not target.split():
        raise OptionError("--target is empty: give a translation, or leave --target out to use the model's own.")


def explain_step(translator: Translator, sentence: str, target: Optional[str] = None, word: Optional[int] = None,
                 piece: Optional[int] = None, beam_size: Optional[int] = None) -> StepExplanation:
    """The attention step that predicts target word `word` (its first piece) or target piece
    `piece` (0-based; piece = number of target pieces is the final </s>) of `sentence`'s
    translation `target` (default: the model's own, by beam search as `Translator.align`).

    `translator` must run on NumPy: `Translator.load(model, sentences=1)`.
    """
    check_step_options(sentence, word, piece, target)
    reading = _reading(translator, sentence, target, beam_size)
    index = _piece_index(reading.target.words, reading.target.word_of_piece, len(reading.target.ids), word, piece,
                         given=target is not None)
    logits, step = next(itertools.islice(_forced_steps(reading, index), index, None))
    return _explanation(translator, reading, index, logits, step)


def explain_steps(translator: Translator, sentence: str, target: Optional[str] = None,
                  beam_size: Optional[int] = None) -> list[StepExplanation]:
    """Every step of the translation, one per target piece and the final </s>, from one
    teacher-forced pass (a step does not depend on the pieces after it, so each equals
    `explain_step` of its piece). For the page of `inspect step --save`."""
    check_step_texts(sentence, target)
    reading = _reading(translator, sentence, target, beam_size)
    steps = _forced_steps(reading, len(reading.target.ids))
    return [_explanation(translator, reading, index, logits, step) for index, (logits, step) in enumerate(steps)]


def step_index(step: StepExplanation, word: Optional[int], piece: Optional[int]) -> int:
    """The index, among the steps of `step`'s translation, of target word `word` or piece `piece`."""
    return _piece_index(step.target_words, step.target_word_of_piece, len(step.target_pieces) - 1, word, piece,
                        step.given)


@dataclass
class _Reading:
    """What the model reads at every step: the source and the target it is teacher-forced on."""

    model: "NumpySeq2Seq"              # the model in its own float32 arithmetic
    src_ids: list[int]
    source_pieces: list[str]           # as StepExplanation.source_pieces
    target: TargetPieces
    target_pieces: list[str]           # as StepExplanation.target_pieces
    given: bool                        # the target came from --target


def _reading(translator: Translator, sentence: str, target: Optional[str], beam_size: Optional[int]) -> _Reading:
    """Encode the source; the target is the given one or the model's own beam-search translation."""
    from .numpy_runtime import NumpyTranslator

    if not isinstance(translator, NumpyTranslator):
        raise TypeError("explain_step needs the NumPy runtime: Translator.load(model, sentences=1).")
    if beam_size is not None:
        check_beam(beam_size)                          # refused even with a --target, as `align` does
    sentence = translator.text.source(sentence)        # as the model's training text (info.text), if it says
    src_ids, src_word_of_piece = translator.encode_source(sentence)
    if target is None:
        beam, alpha, batch_tokens = translator.search_settings(beam_size, None)
        searched = translator.search_ids([src_ids], beam, alpha, batch_tokens)[0]
        tgt = own_translation(translator.tgt_tokenizer, searched or [])
    else:
        tgt = encode_target(translator.tgt_tokenizer, translator.text.target(target))
    source_pieces = translator.src_tokenizer.marked_pieces(sentence.split(), src_ids, src_word_of_piece)
    return _Reading(translator.float_model, src_ids, source_pieces + [EOS_PIECE], tgt,
                    translator.tgt_tokenizer.pieces(tgt.ids) + [EOS_PIECE], given=target is not None)


def _forced_steps(reading: _Reading, pieces: int):
    """The model reading the first `pieces` target pieces: (logits, AttentionStep) of steps 0..pieces."""
    return reading.model.teacher_forced_steps(reading.src_ids + [EOS_ID], reading.target.ids[:pieces])


def _explanation(translator: Translator, reading: _Reading, index: int, logits: np.ndarray, step) -> StepExplanation:
    """Step `index`'s numbers: numpy_runtime's AttentionStep and the next-piece distribution."""
    from .numpy_runtime import log_softmax

    tgt, pieces = reading.target, reading.target_pieces
    probabilities = np.exp(log_softmax(logits[0]))
    chosen_id = tgt.ids[index] if index < len(tgt.ids) else EOS_ID
    best = np.lexsort((np.arange(probabilities.size), -probabilities))[:TOP_PIECES]   # ties: lower id first
    return StepExplanation(
        source_pieces=reading.source_pieces, target_pieces=pieces, target_words=tgt.words,
        target_word_of_piece=tgt.word_of_piece, piece_index=index,
        word_index=tgt.word_of_piece[index] if index < len(tgt.ids) else None,
        previous_piece=BOS_PIECE if index == 0 else pieces[index - 1], given=reading.given,
        decoder_state=step.query[0], encoder_states=step.memory, scores=step.scores[0], weights=step.weights[0],
        context=step.context[0], combined=step.combined[0], attentional=step.attentional[0],
        combine_bias=reading.model.combine.bias, lexical=None if step.lexical is None else step.lexical[0],
        probabilities=probabilities,
        top=[(_piece(translator, int(i)), float(probabilities[i])) for i in best],
        chosen=pieces[index], chosen_probability=float(probabilities[chosen_id]),
        chosen_rank=int((probabilities > probabilities[chosen_id]).sum()) + 1)


def _piece(translator: Translator, piece_id: int) -> str:
    return EOS_PIECE if piece_id == EOS_ID else translator.tgt_tokenizer.pieces([piece_id])[0]


def _piece_index(words: list[str], word_of_piece: list[int], pieces: int, word: Optional[int],
                 piece: Optional[int], given: bool) -> int:
    """The step to show: the first piece of `word`, or `piece` (pieces = the final </s>)."""
    whose = "--target" if given else f"the model's translation {' '.join(words)!r}"
    if word is not None:
        if word >= len(words):
            last = f"--word 0 to {len(words) - 1}" if words else "no word to choose"
            raise OptionError(f"--word {word} is out of range: {whose} has {len(words)} words ({last}).")
        return word_of_piece.index(word)
    assert piece is not None
    if piece > pieces:
        raise OptionError(f"--piece {piece} is out of range: {whose} has {pieces} pieces and then "
                          f"{EOS_PIECE} (--piece 0 to {pieces}).")
    return piece
