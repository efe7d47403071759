"""SentencePiece subwords: train from an iterator, encode word by word, decode.

Text is always encoded word by word (whitespace tokens), so every piece knows the word it came
from: that map turns piece-level attention into word alignments. SentencePiece never lets a
piece cross whitespace, so this gives the same pieces as encoding the whole line.
"""

from __future__ import annotations

import io
from typing import Iterable, Sequence

import sentencepiece as spm

from .errors import InputError, InputTooLongError, ModelFileError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
WORD_START = "\u2581"  # "▁", SentencePiece's mark for a piece that begins a word


class Tokenizer:
    """One SentencePiece model: text <-> piece ids, with the word each piece belongs to."""

    def __init__(self, model_proto: bytes) -> None:
        self.model_proto = model_proto
        self.processor = spm.SentencePieceProcessor()
        try:
            self.processor.LoadFromSerializedProto(model_proto)
        except Exception:  # sentencepiece raises RuntimeError/OSError variants for bad protos
            raise ModelFileError("the SentencePiece model is corrupt.") from None
        ids = (self.processor.pad_id(), self.processor.unk_id(),
               self.processor.bos_id(), self.processor.eos_id())
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ModelFileError("the SentencePiece model was not made by attncli (special ids differ).")

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int, seed_size: int = 1_000_000,
              max_sentences: int = 2_000_000) -> "Tokenizer":
        """Train a unigram model on `sentences` in memory (no temporary files).

        `hard_vocab_limit=False` lets a tiny corpus get fewer pieces instead of failing.
        """
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            hard_vocab_limit=False,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            seed_sentencepiece_size=seed_size,
            num_threads=2,
            minloglevel=2,
        )
        return cls(model.getvalue())

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    def encode_words(self, words: Sequence[str]) -> tuple[list[int], list[int]]:
        """Piece ids of `words` and, for each piece, the index of its word."""
        ids: list[int] = []
        word_of_piece: list[int] = []
        # One call per word: a list argument costs ~170 µs of batching set-up per call, a string ~3 µs.
        for index, pieces in enumerate(self.processor.encode(word) for word in words):
            if not pieces:  # a word that normalises to nothing (e.g. a lone control character)
                pieces = [UNK_ID]
            ids.extend(pieces)
            word_of_piece.extend([index] * len(pieces))
        return ids, word_of_piece

    def encode(self, text: str) -> list[int]:
        return self.encode_words(text.split())[0]

    def encode_batch(self, texts: Sequence[str], threads: int = -1) -> list[list[int]]:
        """Piece ids of many texts at once (one call into SentencePiece: fast for corpora), on
        `threads` threads (-1: SentencePiece's choice)."""
        return [ids if ids else [UNK_ID] for ids in self.processor.encode(list(texts), num_threads=threads)]

    def word_of_pieces(self, ids: Sequence[int]) -> list[int]:
        """Word index of each piece of a whole-sentence encoding: a piece starting with "▁" opens a word."""
        if not hasattr(self, "_starts_word"):
            self._starts_word = [self.processor.id_to_piece(i).startswith(WORD_START) for i in range(len(self))]
        words, index = [], -1
        for piece_id in ids:
            if self._starts_word[piece_id] or index < 0:
                index += 1
            words.append(index)
        return words

    def unknown_surfaces(self, word: str) -> list[str]:
        """The text each <unk> piece of `word` stands for, in order ("perro🐕" -> ["🐕"]); a word
        that normalises to nothing (a lone control character) is read as one <unk>: [word]."""
        ids = self.processor.encode(word)
        if not ids:
            return [word]
        return [piece.removeprefix(WORD_START) or piece
                for piece_id, piece in zip(ids, self.processor.encode(word, out_type=str)) if piece_id == UNK_ID]

    def unknown_words(self, words: Sequence[str], ids: Sequence[int], word_of_piece: Sequence[int]) -> dict[int, list[str]]:
        """For each word (by index) with <unk> pieces among `ids` (encode_words of `words`), their texts."""
        unknown = sorted({word_of_piece[i] for i, piece_id in enumerate(ids) if piece_id == UNK_ID})
        return {index: self.unknown_surfaces(words[index]) for index in unknown}

    def marked_pieces(self, words: Sequence[str], ids: Sequence[int], word_of_piece: Sequence[int]) -> list[str]:
        """`pieces(ids)`, each <unk> named with the text it stands for: "<unk:🐕>"."""
        names = self.pieces(ids)
        surfaces = {index: iter(texts) for index, texts in self.unknown_words(words, ids, word_of_piece).items()}
        for i, piece_id in enumerate(ids):
            if piece_id == UNK_ID:
                text = next(surfaces[word_of_piece[i]], "")
                names[i] = f"<unk:{text}>" if text else names[i]
        return names

    def decode(self, ids: Sequence[int]) -> str:
        return self.processor.decode(list(ids))

    def decode_batch(self, rows: Sequence[Sequence[int]]) -> list[str]:
        return self.processor.decode([list(row) for row in rows])

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.processor.id_to_piece(i) for i in ids]

    def words_of_pieces(self, ids: Sequence[int]) -> tuple[list[str], list[int]]:
        """Group output pieces into words: a piece starting with "▁" starts a new word.

        Returns the words (decoded text of each group) and the word index of every piece.
        """
        groups: list[list[int]] = []
        word_of_piece: list[int] = []
        for piece_id in ids:
            piece = self.processor.id_to_piece(piece_id)
            if piece.startswith(WORD_START) or not groups:
                groups.append([])
            groups[-1].append(piece_id)
            word_of_piece.append(len(groups) - 1)
        words = [self.decode(group) or self.processor.id_to_piece(group[0]) for group in groups]
        return words, word_of_piece


MAX_INPUT_PIECES = 400   # longer inputs are refused: attention and search cost grow with length


def encode_sentence(tokenizer: Tokenizer, sentence: str) -> tuple[list[int], list[int]]:
    """Piece ids of a source sentence and the word of each piece; refuses empty or too long input."""
    words = sentence.split()
    if not words:
        raise InputError("the sentence is empty.")
    try:
        sentence.encode("utf-8")
    except UnicodeEncodeError:   # lone surrogates, e.g. undecodable bytes in a command-line argument
        raise InputError("the sentence is not valid UTF-8 text.") from None
    ids, word_of_piece = tokenizer.encode_words(words)
    if len(ids) > MAX_INPUT_PIECES:
        raise InputTooLongError(f"the sentence is too long ({len(ids)} pieces; the limit is {MAX_INPUT_PIECES}).")
    return ids, word_of_piece
