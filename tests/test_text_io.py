"""Text in, text out (issue 16): a line of several sentences is translated sentence by sentence and
stays one line; an over-long sentence is cut at its clauses or refused, never shortened; a model
folder carries its input normalisation and output detokenization (config.json info.text); and
characters the model reads as <unk> are named once on stderr and marked in alignment tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import SUBPROCESS_ENV
from hypothesis import given, settings, strategies as st

from attncli.alignment import align_file
from attncli.errors import InputError, ModelFileError
from attncli.model_info import ModelInfo, TextSettings
from attncli.modelfile import MODELS_DIR, read_model_info
from attncli.text import TextPipeline, clearly_one_sentence, sentences, unknown_note
from attncli.tokenizer import MAX_INPUT_PIECES
from attncli.translator import Translator

PARAGRAPH = ("Mi hermana vive en Madrid. Trabaja en un hospital cerca del centro. "
             "Los fines de semana le gusta ir al cine.")
FR_EN_TEXT = {"lang": "fr", "target_lang": "en", "normalize_punctuation": True, "tokenize": "moses", "split_dashes": True,
              "lowercase": "first", "replace": {"@-@": "-", "j'": "je", "du": "de le"}, "detokenize": "moses",
              "capitalize": True}


class Recorder:
    """Wraps a translator's search_ids (until the test ends): every call's encoded sources, in order."""

    def __init__(self, translator: Translator, monkeypatch) -> None:
        self.calls: list[list[list[int]]] = []
        search = translator.search_ids

        def recorded(encoded, *args, **kwargs):
            self.calls.append(list(encoded))
            return search(encoded, *args, **kwargs)

        monkeypatch.setattr(translator, "search_ids", recorded)


@pytest.fixture(scope="module")
def es_en() -> Translator:
    return Translator.load("es-en", sentences=1)


# -- sentences ------------------------------------------------------------------------------------

def test_the_issue_paragraph_keeps_its_three_sentences(es_en):
    whole = es_en.translate(PARAGRAPH, beam_size=1, split=False)
    split = es_en.translate(PARAGRAPH, beam_size=1)
    assert len(re.findall(r"[.!?](\s|$)", whole)) < 3                 # the bug: read as one, a sentence is lost
    assert len(re.findall(r"[.!?](\s|$)", split)) == 3, split
    assert "\n" not in split
    assert split.split(". ")[1:] and any(word in split.split(". ")[-1] for word in ("cinema", "movie", "film"))


def test_every_sentence_is_searched_in_the_same_batch_as_the_other_lines(translator, monkeypatch):
    recorder = Recorder(translator, monkeypatch)
    outputs = translator.translate(["Hola. Adiós.", "", "   ", "Uno. ¿Dos? ¡Tres!", "Tengo hambre."], beam_size=1)
    assert len(recorder.calls) == 1 and len(recorder.calls[0]) == 2 + 3 + 1     # one search, every sentence
    assert len(outputs) == 5 and outputs[1] == outputs[2] == ""                  # lines stay lines, blank stays blank
    one = [translator.translate(sentence, beam_size=1) for sentence in ("Uno.", "¿Dos?", "¡Tres!")]
    assert outputs[3] == " ".join(text for text in one if text)                  # rejoined with a space


def test_no_split_reads_a_line_as_one_sentence(translator, monkeypatch):
    recorder = Recorder(translator, monkeypatch)
    translator.translate(["Hola. Adiós.", "Uno. Dos. Tres."], beam_size=1, split=False)
    assert [len(call) for call in recorder.calls] == [2]


def test_translate_cli_keeps_lines_and_no_split_turns_splitting_off(run_cli, tiny_model_dir, monkeypatch):
    from attncli.numpy_runtime import NumpyTranslator

    searched: list[int] = []
    search = NumpyTranslator.search_ids
    monkeypatch.setattr(NumpyTranslator, "search_ids",
                        lambda self, encoded, *args: searched.append(len(encoded)) or search(self, encoded, *args))
    stdin = "Hola. Adiós.\n\nTengo un perro. Es negro. Duerme mucho.\n".encode()
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""            # 3 lines in, 3 out (the tiny model may say little)
    assert searched == [5]
    searched.clear()
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1", "--no-split"], stdin)
    assert result.exit_code == 0 and len(result.stdout.split("\n")) == 4
    assert searched == [2]
    searched.clear()
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1", "Hola. Adiós."])
    assert result.exit_code == 0 and result.stdout.count("\n") == 1 and searched == [2]


def test_evaluate_reads_test_lines_whole_unless_told_to_split(run_cli, tiny_model_dir, tmp_path, monkeypatch):
    from attncli.torch_runtime import TorchTranslator

    searched: list[int] = []
    search = TorchTranslator.search_ids
    monkeypatch.setattr(TorchTranslator, "search_ids",
                        lambda self, encoded, *args: searched.append(len(encoded)) or search(self, encoded, *args))
    test = tmp_path / "test.tsv"
    test.write_text("No me despidieron. Me fui.\tI wasn't fired. I quit.\nTengo hambre.\tI'm hungry.\n", encoding="utf-8")
    assert run_cli(["evaluate", test, "-m", tiny_model_dir, "--beam", "1", "--threads", "1"]).exit_code == 0
    assert run_cli(["evaluate", test, "-m", tiny_model_dir, "--beam", "1", "--threads", "1", "--split"]).exit_code == 0
    assert searched == [2, 3]


def test_a_line_that_is_clearly_one_sentence_skips_the_segmenter():
    assert clearly_one_sentence("Tengo un perro negro.") and clearly_one_sentence("¿Dónde está la estación de tren?")
    assert clearly_one_sentence("«Sí», dijo (en voz baja) -- y se fue...»")
    for line in ("Hola. Adiós.", "El Sr. García llegó.", "Cuesta 3.50 euros.", "¿Qué? No sé", "Uno; dos"):
        assert not clearly_one_sentence(line)
    code = ("import sys; from attncli.translator import Translator; t = Translator.load('es-en', sentences=1); "
            "t.translate('Tengo hambre.'); assert 'sentencex' not in sys.modules; "
            "t.translate('Hola. Adiós.'); assert 'sentencex' in sys.modules and 'sacremoses' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env=SUBPROCESS_ENV, timeout=60)


def test_sentences_follow_the_language_and_keep_every_word():
    assert sentences("El Sr. García llegó a las 3.30 de la tarde. ¿Dónde estabas? ¡No lo sé!", "es") == [
        "El Sr. García llegó a las 3.30 de la tarde.", "¿Dónde estabas?", "¡No lo sé!"]
    assert sentences("  ", "es") == []


@settings(max_examples=200, deadline=None)
@given(line=st.lists(st.sampled_from(list("ab .?!¿¡,;:…»«\"'()-3\u3002\t") + ["Sr.", "U.S.", "A", "3.5"]),
                    max_size=40).map("".join))
def test_sentences_never_lose_text(line):
    assert "".join("".join(sentences(line, "es")).split()) == "".join(line.split())


# -- over-long sentences --------------------------------------------------------------------------

def test_an_over_long_sentence_is_cut_at_its_clauses_and_nothing_is_lost(translator, monkeypatch):
    clause = "el perro negro de mi hermana duerme en la casa grande"
    sentence = ", ".join([clause] * 60) + "."
    words = sentence.split()
    assert len(translator.src_tokenizer.encode_words(words)[0]) > MAX_INPUT_PIECES
    recorder = Recorder(translator, monkeypatch)
    [output] = translator.translate([sentence], beam_size=1)
    [parts] = recorder.calls
    assert len(parts) > 1 and all(len(ids) <= MAX_INPUT_PIECES for ids in parts)
    assert sum(parts, []) == translator.src_tokenizer.encode_words(words)[0]     # every piece, in order
    assert "\n" not in output
    with pytest.raises(InputError, match="too long"):
        translator.translate([sentence], beam_size=1, split=False)                 # --no-split: refused as before


def test_an_over_long_clause_is_refused_clearly(translator):
    sentence = " ".join(["perro"] * (MAX_INPUT_PIECES + 10)) + ", y gato."
    with pytest.raises(InputError, match=r"too long \(\d+ pieces; the limit is 400\).*clause.*split it"):
        translator.translate([sentence])


def test_an_over_long_line_on_stdin_names_its_line(run_cli, tiny_model_dir):
    stdin = ("Hola.\n" + " ".join(["perro"] * 500) + "\n").encode()
    result = run_cli(["translate", "-m", tiny_model_dir], stdin)
    assert result.exit_code == 1 and result.stdout.count("\n") == 1
    assert result.stderr.startswith("attncli: error: stdin:2: the sentence is too long") and "clause" in result.stderr


# -- the model's own text normalisation -----------------------------------------------------------

@pytest.fixture(scope="module")
def normalising_model(tiny_model_dir, tmp_path_factory):
    """The tiny model with a Hansards-like info.text record (its weights do not matter here)."""
    folder = tmp_path_factory.mktemp("normalising") / "fr-en-tiny"
    shutil.copytree(tiny_model_dir, folder)
    config = folder / "config.json"
    document = json.loads(config.read_text(encoding="utf-8"))
    document["info"]["text"] = FR_EN_TEXT
    config.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def seen_by_tokenizer(translator: Translator) -> list[list[str]]:
    seen: list[list[str]] = []
    encode_words = translator.src_tokenizer.encode_words

    def recorded(words):
        seen.append(list(words))
        return encode_words(words)

    translator.src_tokenizer.encode_words = recorded
    return seen


def test_the_record_is_read_and_written_back(normalising_model):
    card = read_model_info(normalising_model)
    assert card.text == TextSettings(**FR_EN_TEXT)
    assert card.to_dict()["text"] == FR_EN_TEXT
    assert ModelInfo.from_dict({}).text is None                                    # raw text, as es-en


def test_the_shipped_fr_en_model_records_its_normalisation():
    assert read_model_info(MODELS_DIR / "es-en").text is None
    text = read_model_info(MODELS_DIR / "fr-en").text
    assert (text.lang, text.target_lang, text.tokenize, text.lowercase, text.detokenize) == ("fr", "en", "moses", "first", "moses")
    assert text.replace["l'"] == "le" and text.replace["du"] == "de le"           # as benchmarks/prepare_fr_en.py


@pytest.mark.parametrize("change,words", [
    ({"tokenise": "moses"}, ["tokenise"]), ({"lowercase": "yes"}, ["lowercase"]), ({"tokenize": "spacy"}, ["tokenize"]),
    ({"replace": {"du": ""}}, ["replace"]), ({"lang": None, "target_lang": None}, ["lang"]), ({"capitalize": 1}, ["capitalize"]),
])
def test_a_bad_record_is_refused_naming_it(change, words):
    with pytest.raises(ModelFileError) as error:
        ModelInfo.from_dict({"text": {**FR_EN_TEXT, **change}})
    assert all(word in str(error.value) for word in ["info.text", *words]), str(error.value)


def test_translate_normalises_input_and_detokenizes_output(normalising_model):
    translator = Translator.load(normalising_model, sentences=1)
    seen = seen_by_tokenizer(translator)
    translator.tgt_tokenizer.decode = lambda ids: "it ' s the man ' s dog ."
    assert translator.translate("J'ai faim du pain. L’enfant est aujourd’hui là-bas.") == "It's the man's dog. It's the man's dog."
    assert seen == [["je", "ai", "faim", "de", "le", "pain", "."],
                    ["l'", "enfant", "est", "aujourd'", "hui", "là", "-", "bas", "."]]


def test_a_line_that_normalises_to_nothing_translates_to_nothing(normalising_model):
    translator = Translator.load(normalising_model, sentences=1)
    assert translator.translate(["\x01", "\x02 \x03", ""], split=False) == ["", "", ""]      # Moses drops control characters
    assert translator.translate(["\x01"]) == [""]


def test_inspect_normalises_a_sentence_and_its_target_but_not_a_pairs_file(normalising_model, tmp_path):
    translator = Translator.load(normalising_model, sentences=1)
    alignment = translator.align("J'ai faim du pain.", target="I'm hungry for bread.")
    assert alignment.src_words == ["je", "ai", "faim", "de", "le", "pain", "."]
    assert alignment.tgt_words == ["I", "'m", "hungry", "for", "bread", "."]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("Rendons grâce à le ciel aujourd' hui .\tThanks be to heaven today .\n", encoding="utf-8")
    [(alignment, _)] = align_file(translator, pairs)
    assert alignment.src_words == "Rendons grâce à le ciel aujourd' hui .".split()     # as the gold links count them
    assert alignment.tgt_words == "Thanks be to heaven today .".split()


def test_normalising_already_normalised_text_changes_nothing():
    pipeline = TextPipeline(TextSettings(**FR_EN_TEXT))
    for text in ("je ai faim .", "les enfants ont besoin de jouets et de loisirs .", "le projet de loi C - 49 ,"):
        assert pipeline.source(text) == text
    assert pipeline.target("they need toys and entertainment .") == "they need toys and entertainment ."
    assert TextPipeline(None).source("J'ai faim.") == "J'ai faim." and TextPipeline(None).output("a ' s .") == "a ' s ."


def test_fr_en_translates_raw_french():
    translator = Translator.load("fr-en", sentences=1)
    assert translator.translate("J'ai faim.") == "I am hungry."
    assert translator.translate("je ai faim .") == "I am hungry."


# -- characters unknown to the model --------------------------------------------------------------

def test_unknown_characters_are_collected(es_en):
    es_en.unknown_characters.clear()
    es_en.translate(["Mi perro 🐕 habla 中文.", "Hola 🐕."])
    assert list(es_en.unknown_characters) == ["🐕", "中", "文"]
    assert unknown_note(es_en.unknown_characters) == \
        "3 characters unknown to the model were read as <unk>: 🐕 中 文"
    assert unknown_note(["\u200b"]) == "1 character unknown to the model was read as <unk>: U+200B"


def test_the_note_is_one_stderr_line_and_stdout_is_unchanged(run_cli, tiny_model_dir, translator):
    lines = ["Tengo un perro 🐕.", "", "Mi gato habla 中."]
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], "\n".join(lines).encode() + b"\n")
    assert result.exit_code == 0
    assert result.stdout == "\n".join(translator.translate(lines, beam_size=1)) + "\n"
    assert result.stderr == "attncli: note: 2 characters unknown to the model were read as <unk>: 🐕 中\n"
    result = run_cli(["translate", "-m", tiny_model_dir, "Tengo un perro."])
    assert result.exit_code == 0 and result.stderr == ""


def test_alignment_tables_and_json_mark_unknown_pieces(run_cli, tiny_model_dir):
    args = ["inspect", "alignment", "-m", tiny_model_dir, "Tengo un perro🐕.", "--target", "I have a dog 🐕."]
    table = run_cli([*args])
    assert table.exit_code == 0
    # marked where the words are shown; the full stop, a piece of its own, has its own column and row
    assert re.search(r"┃ perro<unk:🐕> ┃ +\. ┃", table.stdout) and "\n│ <unk:🐕> " in table.stdout and "\n│ . " in table.stdout
    assert table.stderr == "attncli: note: 1 character unknown to the model was read as <unk>: 🐕\n"
    data = json.loads(run_cli([*args, "--format", "json"]).stdout)
    assert "<unk:🐕>" in data["src_pieces"] and "<unk:🐕>" in data["tgt_pieces"]
    assert data["src_words"] == ["Tengo", "un", "perro🐕."]                          # the words as given
    pharaoh = run_cli([*args, "--format", "pharaoh"]).stdout.split()
    assert all(int(link.split("-")[0]) < 3 and int(link.split("-")[1]) < 5 for link in pharaoh)
