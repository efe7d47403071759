"""Arbitrary text never crashes: the corpus reader gives pairs or one CorpusError naming a real line,
and the Translator gives one line per input or an InputError (property tests with hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attncli.corpus import SentencePair, read_pairs
from attncli.errors import CorpusError, InputError

ODD = "\t\r\n\x00\x1c\x1d\x1e\x85\u2028\u2029\ufeff\u200b \xa0é中🙂"
line_text = st.text(alphabet=st.one_of(st.sampled_from(ODD), st.characters(min_codepoint=32, max_codepoint=0x10FFFF,
                                                                            blacklist_categories=())), max_size=25)
raw_line = st.one_of(
    line_text.map(lambda text: text.encode("utf-8", "surrogatepass")),   # lone surrogates: invalid UTF-8
    st.tuples(line_text, line_text).map(lambda p: f"{p[0]}\t{p[1]}".encode("utf-8", "surrogatepass")),
    st.binary(max_size=25),
    st.sampled_from([b"hola\tadi\xf3s", b"\xef\xbb\xbfbom\tok", b"a\tb\r", b"a\tb\r\r", b"\tx", b"x\t", b"a\t\xed\xa0\x80"]),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hypothesis") / "corpus.tsv"


@settings(max_examples=30, deadline=None)
@given(lines=st.lists(raw_line, max_size=6), ending=st.sampled_from([b"\n", b"\r\n"]))
def test_corpus_reader_gives_pairs_or_a_corpus_error(scratch, lines, ending):
    scratch.write_bytes(ending.join(lines) + (ending if lines else b""))
    physical = scratch.read_bytes().split(b"\n")          # what `wc -l` counts; never U+2028 and kin
    try:
        pairs = read_pairs(scratch)
    except CorpusError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(scratch))
        if message.startswith(f"{scratch}:") and message[len(str(scratch)) + 1].isdigit():
            line_no = int(message[len(str(scratch)) + 1:].split(":")[0])
            assert 1 <= line_no <= len(physical)
        return
    assert pairs and all(isinstance(pair, SentencePair) for pair in pairs)
    for pair in pairs:
        for side in (pair.source, pair.target):
            assert side and side == side.strip() and "\t" not in side and "\n" not in side
    texts = [raw.decode("utf-8") for raw in physical]
    texts[0] = texts[0].removeprefix("\ufeff")
    non_blank = [text for text in texts if text.rstrip("\r\n").strip()]
    assert len(pairs) == len(non_blank)


@settings(max_examples=30, deadline=None)
@given(text=st.text(max_size=60))
def test_translate_never_crashes_on_any_text(translator, text):
    try:
        [output] = translator.translate([text], beam_size=2)
    except InputError as exc:
        assert text.split() and "too long" in str(exc)
        return
    assert isinstance(output, str) and "\n" not in output
    if not text.split():
        assert output == ""


@settings(max_examples=5, deadline=None)
@given(words=st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=4), min_size=380, max_size=420))
def test_translate_refuses_only_too_long_input(translator, words):
    from attncli.tokenizer import MAX_INPUT_PIECES

    pieces = len(translator.src_tokenizer.encode(" ".join(words)))
    try:
        translator.translate([" ".join(words)], beam_size=1)
    except InputError as exc:
        assert pieces > MAX_INPUT_PIECES and "too long" in str(exc)
    else:
        assert pieces <= MAX_INPUT_PIECES


def test_translate_refuses_lone_surrogates_with_an_input_error(translator):
    with pytest.raises(InputError):
        translator.translate(["hola \udcff"])
