"""The training sources' words in the model folder, and the note that names the input words a
model never saw in training: what a word is, the stored set, the note's line, fine-tuning."""

from __future__ import annotations

import shutil
from dataclasses import replace

from conftest import TINY

from attncli.modelfile import SOURCE_WORDS_FILE, read_source_words
from attncli.source_words import NOTE_SHOWN, format_words, parse_words, training_words, unseen, unseen_note, word_keys
from attncli.training import train


def test_words_are_casefolded_letter_runs_split_at_punctuation_and_apostrophes():
    assert word_keys("¿Por qué ESTÁIS bailando? L'avez-vous dit, Tom's e-mail 1999 ⁇") == [
        "por", "qué", "estáis", "bailando", "l", "avez", "vous", "dit", "tom", "s", "e", "mail"]
    assert word_keys("ﬁn") == ["fin"]                        # NFKC, as SentencePiece normalises
    assert word_keys("我爱你 东京タワー") == ["我", "爱", "你", "东", "京", "タ", "ワ", "ー"]   # unspaced scripts: characters
    assert word_keys("हिन्दी भाषा, İstanbul") == ["हिन्दी", "भाषा", "i̇stanbul"]    # combining marks stay in their word


def test_the_set_is_the_training_words_or_none_when_too_large():
    assert training_words(["Hola, Tom.", "hola mundo"]) == {"hola", "tom", "mundo"}
    assert training_words(["uno dos", "tres"], limit=2) is None
    assert parse_words(format_words({"b", "a"})) == {"a", "b"} and format_words({"b", "a"}) == "a\nb\n"
    assert unseen(frozenset({"hola", "tom"}), "Hola, Tom y Mary, hola Mary.") == ["y", "mary"]


def test_the_note_names_the_words_and_how_many_more():
    assert unseen_note(["bailando"]) == ("1 word of the input never occurred in this model's training corpus "
                                         "(bailando): its translation is a guess.")
    many = unseen_note([f"w{i}x" for i in range(NOTE_SHOWN + 3)])
    assert many.startswith(f"{NOTE_SHOWN + 3} words of the input") and "w11x and 3 more)" in many


def test_a_trained_model_holds_the_words_of_its_training_sources(tiny_model_dir, corpus_files):
    sources = [line.split("\t")[0] for line in corpus_files[0].read_text(encoding="utf-8").splitlines()]
    stored = read_source_words(tiny_model_dir)
    assert stored == training_words(sources)
    dev_only = {word for line in corpus_files[1].read_text(encoding="utf-8").splitlines()
                for word in word_keys(line.split("\t")[0])} - stored
    assert dev_only                                      # the dev sources have words the training ones lack


def test_translating_notes_the_unseen_words_once_and_only_those(run_cli, tiny_model_dir):
    seen = sorted(read_source_words(tiny_model_dir))[:3]
    result = run_cli(["translate", "--model", tiny_model_dir], stdin=(
        f"{' '.join(seen)} zorglub.\nzorglub y blorft.\n{' '.join(seen)}\n").encode())
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 3
    assert result.stderr == ("attncli: note: 2 words of the input never occurred in this model's training corpus "
                             "(zorglub, blorft): their translations are guesses.\n")
    assert run_cli(["translate", "--model", tiny_model_dir, " ".join(seen)]).stderr == ""


def test_a_model_folder_without_the_words_gives_no_note(run_cli, tiny_model_dir, tmp_path):
    shutil.copytree(tiny_model_dir, tmp_path / "old")
    (tmp_path / "old" / SOURCE_WORDS_FILE).unlink()
    result = run_cli(["translate", "--model", tmp_path / "old", "zorglub y blorft."])
    assert result.exit_code == 0 and result.stderr == ""


def test_fine_tuning_adds_the_start_models_words_or_stores_none_without_them(tiny_model_dir, numbers, tmp_path):
    config = replace(TINY, epochs=1)
    train(numbers[0], numbers[1], tmp_path / "tuned", config, init_from=tiny_model_dir)
    assert read_source_words(tmp_path / "tuned") == read_source_words(tiny_model_dir) | {"uno", "dos", "tres", "cuatro",
        "cinco", "seis", "siete", "ocho", "nueve", "diez", "once", "doce"}
    shutil.copytree(tiny_model_dir, tmp_path / "old")
    (tmp_path / "old" / SOURCE_WORDS_FILE).unlink()
    train(numbers[0], numbers[1], tmp_path / "tuned-old", config, init_from=tmp_path / "old")
    assert read_source_words(tmp_path / "tuned-old") is None
