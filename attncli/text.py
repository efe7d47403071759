"""Text in, text out: what happens to a line of text between the user and the model.

The models are trained on single sentences (Tatoeba: ~6 words), so `Translator.translate_stream`
splits each line into sentences (`sentences`: sentencex, imported only for a line that may hold
more than one), splits a sentence longer than the model takes at its clauses (`clauses`), and
rejoins the translations with a space. A model whose training text was normalised (tokenized,
lowercased: config.json `info.text`, model_info.TextSettings) gets its input the same way and
gives plain text back (`TextPipeline`: sacremoses, imported on first use). Characters the
model's vocabulary lacks are read as <unk>; `unknown_note` is the line that says so.
This module imports neither torch nor NumPy.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterable, Optional

from .model_info import TextSettings

# Punctuation that never ends a sentence: a line whose only other punctuation is at its very end
# is one sentence, and the segmenter is not needed (nor imported).
NOT_SENTENCE_ENDS = frozenset(",'\"«»‹›“”„‘’‚()[]{}<>-‐‑‒–—¿¡/\\&@#%*_§†‡•·")
# A sentence too long for the model is cut after these (a clause, a list item), then packed again.
CLAUSE_END = re.compile(r"(?<=[,;:،、，；：…—–\)\]»”])\s+|\s+(?=[—–(\[«“])")
APOSTROPHES = ("'", "’")
UNKNOWN_SHOWN = 20          # the note lists at most this many characters


def clearly_one_sentence(line: str) -> bool:
    """True when `line` has no punctuation that could end a sentence before its last word."""
    body = line.rstrip()
    end = len(body)
    while end and (unicodedata.category(body[end - 1])[0] in "PZ"):   # the sentence's own end: . ?! .» )
        end -= 1
    return not any(unicodedata.category(char)[0] == "P" and char not in NOT_SENTENCE_ENDS for char in body[:end])


def sentences(line: str, lang: Optional[str]) -> list[str]:
    """The sentences of a line (sentencex's rules for `lang`, generic ones if None), stripped; a line
    that is clearly one sentence is returned whole. Nothing is lost: if the parts do not add up
    to the line's text, the whole line is one sentence."""
    if not line.strip():
        return []
    if clearly_one_sentence(line):
        return [line.strip()]
    import sentencex      # ~2 ms; Wikimedia's rule-based segmenter, abbreviation lists for ~300 languages

    parts = [part.strip() for part in sentencex.segment(lang or "en", line) if part.strip()]
    if "".join("".join(parts).split()) != "".join(line.split()):
        return [line.strip()]
    return parts


def clauses(sentence: str) -> list[str]:
    """A sentence cut after clause punctuation (, ; : — closing brackets), each part with its mark."""
    return [part for part in CLAUSE_END.split(sentence.strip()) if part]


def unknown_note(characters: Iterable[str]) -> str:
    """The stderr note for characters read as <unk>, e.g. "2 characters unknown to the model were
    read as <unk>: 🐕 中" (invisible ones as U+XXXX)."""
    chars = list(dict.fromkeys(characters))
    shown = " ".join(char if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
                     for char in chars[:UNKNOWN_SHOWN])
    more = f" (and {len(chars) - UNKNOWN_SHOWN} more)" if len(chars) > UNKNOWN_SHOWN else ""
    verb = "character unknown to the model was" if len(chars) == 1 else "characters unknown to the model were"
    return f"{len(chars)} {verb} read as <unk>: {shown}{more}"


class TextPipeline:
    """A model's TextSettings applied: `source` and `target` bring text to the form the model was
    trained on, `output` brings the model's output back to plain text. Without settings (or
    with empty ones) every method returns its text unchanged."""

    def __init__(self, settings: Optional[TextSettings]) -> None:
        self.settings = settings or TextSettings()
        self._moses_tools: dict[tuple[str, str], Any] = {}

    def source(self, text: str) -> str:
        """Source text as the model was trained on it (punctuation, tokens, case, replacements)."""
        tokens = self._tokens(text, self.settings.lang)
        replace = self.settings.replace
        return " ".join(part for token in tokens for part in (replace[token].split() if token in replace else [token]))

    def target(self, text: str) -> str:
        """A given translation (inspect alignment --target) as the model's training targets were written."""
        return " ".join(self._tokens(text, self.settings.target_lang))

    def output(self, text: str) -> str:
        """The model's output as plain text: detokenized (Moses) and capitalised, as configured."""
        settings = self.settings
        if settings.detokenize == "moses" and text.strip():
            detokenizer = self._moses("MosesDetokenizer", settings.target_lang)
            text = detokenizer.detokenize(_attach_apostrophes(text.split(), settings.target_lang))
        if settings.capitalize:
            for index, char in enumerate(text):
                if char.isalpha():
                    text = text[:index] + char.upper() + text[index + 1:]
                    break
        return text

    def _tokens(self, text: str, lang: Optional[str]) -> list[str]:
        settings = self.settings
        if settings.normalize_punctuation:
            text = self._moses("MosesPunctNormalizer", lang).normalize(text)
        if settings.tokenize == "moses":
            tokenizer = self._moses("MosesTokenizer", lang)
            tokens = tokenizer.tokenize(text, escape=False, aggressive_dash_splits=settings.split_dashes)
        else:
            tokens = text.split()
        if settings.lowercase is True:
            tokens = [token.lower() for token in tokens]
        elif settings.lowercase == "first" and tokens and tokens[0] != "I":   # as the training text: not the pronoun I
            tokens[0] = tokens[0].lower()
        return tokens

    def _moses(self, kind: str, lang: Optional[str]) -> Any:
        """A sacremoses tool for `lang`, made once. sacremoses takes ~0.35 s to import (it compiles
        its Unicode regular expressions): only the models whose info.text needs it pay that."""
        key = (kind, lang or "en")
        if key not in self._moses_tools:
            import sacremoses

            self._moses_tools[key] = getattr(sacremoses, kind)(lang=key[1])
        return self._moses_tools[key]


def _attach_apostrophes(tokens: list[str], lang: Optional[str]) -> list[str]:
    """Lone apostrophes (training text like "Tom ' s") put where Moses's tokenizer puts them, so that
    its detokenizer can undo them: English "Tom 's", French/Italian/Catalan/Irish "l' homme"."""
    right = lang == "en"
    left = lang in ("fr", "it", "ca", "ga")
    if not (right or left):
        return tokens
    result: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        between_words = (token in APOSTROPHES and result and result[-1][-1:].isalnum()
                         and index + 1 < len(tokens) and tokens[index + 1][:1].isalpha())
        if between_words and right:
            result.append(token + tokens[index + 1])
            index += 2
            continue
        if between_words and left:
            result[-1] += token
        else:
            result.append(token)
        index += 1
    return result
