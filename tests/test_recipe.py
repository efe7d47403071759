"""The recipe chosen from the corpus size, and the warnings about the data."""

from __future__ import annotations

import pytest

from attncli.config import TrainConfig
from attncli.corpus import SentencePair
from attncli.recipe import complete_recipe


@pytest.mark.parametrize("pairs, vocab, batch, dropout, tied, warmup, rate, sampling, lexical", [
    (2_500, 2000, 2048, 0.3, True, 100, 0.001, 1.0, True), (4_000, 2000, 2048, 0.3, True, 100, 0.001, 0.0, True),
    (10_000, 2000, 2048, 0.3, True, 400, 0.002, 0.0, True),
    (45_000, 3000, 4096, 0.2, False, 400, 0.002, 0.0, True), (114_000, 8000, 4096, 0.2, False, 400, 0.002, 0.0, False)])
def test_rule_by_corpus_size(pairs, vocab, batch, dropout, tied, warmup, rate, sampling, lexical):
    config, line = complete_recipe(TrainConfig(), pairs)
    assert (config.vocab_size, config.batch_tokens, config.dropout, config.tied_output, config.warmup_steps,
            config.learning_rate, config.subword_sampling, config.lexical_model) == (
                vocab, batch, dropout, tied, warmup, rate, sampling, lexical)
    assert line.startswith(f"{pairs:,} training pairs → vocabulary {vocab:,}")
    guided = pairs < 60_000                            # without a time budget; with one of 90 minutes or less: always
    assert config.aligner_guide is guided and ("attention guided by the built-in aligner" in line) is guided
    config.validate()


def test_the_shipped_recipe_is_unchanged_on_the_full_corpus():
    """The full es-en corpus gets the values that trained the shipped model (README 'Shipped models')."""
    config, _ = complete_recipe(TrainConfig(embed_size=256, hidden_size=384, dropout=0.25), 112_000)
    assert (config.vocab_size, config.batch_tokens, config.dropout, config.tied_output, config.warmup_steps,
            config.learning_rate, config.subword_sampling, config.lexical_model) == (8000, 4096, 0.25, False, 400, 0.002, 0.0,
                                                                                     False)
    rebuild = TrainConfig(embed_size=256, hidden_size=384, dropout=0.25, max_minutes=90, vocab_size=8000,
                          lexical_model=False, aligner_guide=False)  # its rebuild command pins what 90 minutes change
    config, line = complete_recipe(rebuild, 112_000)
    assert (config.vocab_size, config.lexical_model, config.batch_tokens, config.warmup_steps) == (8000, False, 4096, 400)
    assert config.aligner_guide is False
    assert "vocabulary" not in line and "lexical" not in line and "minutes" not in line


@pytest.mark.parametrize("pairs, minutes, vocab, said", [
    (114_000, 30, 4000, "114,000 training pairs in 30 minutes → vocabulary 4,000"),
    (114_000, 90, 4000, "114,000 training pairs in 90 minutes → vocabulary 4,000"),
    (114_000, 90.5, 8000, "114,000 training pairs → vocabulary 8,000"),
    (114_000, 0, 8000, "114,000 training pairs → vocabulary 8,000"),
    (45_000, 30, 3000, "45,000 training pairs → vocabulary 3,000")])
def test_a_short_time_budget_gives_large_corpora_a_4k_vocabulary_and_the_lexical_model(pairs, minutes, vocab, said):
    """Up to 90 minutes the 8,000-piece output layer's slower updates do not pay off (recipe.py's measurements)."""
    config, line = complete_recipe(TrainConfig(max_minutes=minutes), pairs)
    assert config.vocab_size == vocab and line.startswith(said)
    assert config.lexical_model is (vocab != 8000)     # the lexical model, too, except the shipped recipe
    assert config.aligner_guide is (vocab != 8000)     # and the aligner guide


@pytest.mark.parametrize("pairs, minutes", [(600_000, 30), (4_000, 0)])
def test_the_recipe_does_not_choose_the_aligner_for_more_pairs_than_it_holds(pairs, minutes, monkeypatch):
    """A corpus too large for the built-in aligner (word_aligner.MAX_PAIRS) trains unguided
    rather than stopping on an option the user never gave."""
    monkeypatch.setattr("attncli.word_aligner.MAX_PAIRS", min(pairs - 1, 500_000))
    config, line = complete_recipe(TrainConfig(max_minutes=minutes), pairs)
    assert config.aligner_guide is False and config.lexical_model is True
    assert line.endswith(f"no aligner guide (it aligns at most {min(pairs - 1, 500_000):,} pairs) (options override)")
    config, line = complete_recipe(TrainConfig(max_minutes=minutes, aligner_guide=True), pairs)
    assert config.aligner_guide is True and "aligner" not in line     # given: word_aligner's one-line error


def test_options_given_win():
    given = TrainConfig(vocab_size=500, batch_tokens=1000, dropout=0.1, tied_output=False, warmup_steps=7,
                        learning_rate=0.005, subword_sampling=0.0, lexical_model=False, aligner_guide=False)
    config, line = complete_recipe(given, 2_500)
    assert config == given and line == ""
    config, line = complete_recipe(TrainConfig(vocab_size=3000), 2_500)
    assert config.vocab_size == 3000 and config.batch_tokens == 2048 and "vocabulary" not in line


def test_a_resumed_run_keeps_what_the_recipe_chose_for_it():
    """--resume with another --max-minutes: the unset vocabulary and architecture fields come from
    the stopped run's model (a budget of 90 minutes or less chose 4,000 pieces and the lexical model for
    a large corpus; without one the recipe would choose 8,000 and none); given options stay."""
    from attncli.config import ModelConfig

    stopped, _ = complete_recipe(TrainConfig(max_minutes=30), 114_000)
    saved = ModelConfig(src_vocab_size=3_990, tgt_vocab_size=3_990, dropout=stopped.dropout,
                        tied_output=stopped.tied_output, lexical_model=stopped.lexical_model).to_dict()
    resumed, line = complete_recipe(TrainConfig(embed_size=256).resuming(saved), 114_000)
    assert (resumed.vocab_size, resumed.lexical_model, resumed.tied_output, resumed.dropout) == (3_990, True, False, 0.2)
    assert "vocabulary" not in line and "lexical" not in line
    given = TrainConfig(vocab_size=4000, lexical_model=True).resuming(saved)
    assert given.vocab_size == 4000 and given.lexical_model is True


def test_tied_only_when_sizes_allow():
    config, line = complete_recipe(TrainConfig(embed_size=128, hidden_size=256), 2_500)
    assert config.tied_output is False and "separate output embeddings" in line
    config.validate()


def pairs(*texts: str) -> list[SentencePair]:
    return [SentencePair(text, text.upper()) for text in texts]


def data_warnings(tmp_path, train: list[SentencePair], dev: list[SentencePair]) -> list[str]:
    """The warnings prepare_data gives for these training and dev files."""
    from attncli.training_data import prepare_data

    (tmp_path / "train.tsv").write_text("".join(f"{p.source}\t{p.target}\n" for p in train), encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("".join(f"{p.source}\t{p.target}\n" for p in dev), encoding="utf-8")
    events = []
    prepare_data(tmp_path / "train.tsv", tmp_path / "dev.tsv", None, TrainConfig(vocab_size=48), None, events.append,
                 tmp_path / "cache")
    return [event.message for event in events if event.kind == "warning"]


def test_warnings_about_the_data(tmp_path):
    many = pairs(*[f"frase {i}" for i in range(1200)])
    assert data_warnings(tmp_path, many, pairs("frase 5000")) == []
    small = data_warnings(tmp_path, many[:300], pairs("frase 5000"))
    assert len(small) == 1 and "only 300 training pairs" in small[0]
    duplicated = data_warnings(tmp_path, many[:400] * 3, pairs("frase 5000"))
    assert any("800 of 1,200 training pairs are duplicates" in warning for warning in duplicated)
    overlap = data_warnings(tmp_path, many, many[:5] + pairs("frase 5000"))
    assert overlap == ["5 of 6 dev pairs are also training pairs: dev scores will look better than the model is."]


def test_a_dev_set_full_of_words_the_corpus_lacks_is_a_warning():
    from attncli.source_words import training_words
    from attncli.training_data import unseen_dev_words_warning

    words = training_words(f"frase {i}" for i in range(1200))
    found = unseen_dev_words_warning(words, ["frase nueva", "otra cosa", "frase 3000", "frase 4000", "Frase 5000"])
    assert found == ("2 of 5 dev sentences (40%) hold a word no training pair has (3 of the 7 dev words): the model "
                     "can only guess such words, and pairs that hold them would help more than any option.")
    assert unseen_dev_words_warning(words, ["frase nueva", "frase 3000", "frase 4000", "Frase 5000", "frase 6000"]) is None
    assert unseen_dev_words_warning(words, []) is None


def test_duplicates_are_estimated_in_bounded_memory(monkeypatch):
    """Beyond LIMIT distinct pairs the count is estimated from a hash sample; it stays near the truth."""
    import numpy as np

    from attncli.corpus_passes import DuplicateCounter

    monkeypatch.setattr(DuplicateCounter, "LIMIT", 64)
    counter = DuplicateCounter()
    distinct = np.random.default_rng(0).integers(0, 2**63, 2000, dtype=np.uint64)
    for copy in range(5):
        for start in range(0, 2000, 500):
            counter.add(distinct[start:start + 500])
    assert counter.level > 0 and len(counter.counts) <= 64
    assert 0.8 * 8000 <= counter.duplicates() <= 1.2 * 8000


def test_train_prints_the_recipe_and_warnings(run_cli, tmp_path, corpus_files):
    result = run_cli(["train", corpus_files[0], "--dev", corpus_files[0], "--out", tmp_path / "m", "--epochs", "1",
                      "--vocab-size", "300", "--embed-size", "32", "--hidden-size", "32", "--threads", "1"])
    assert result.exit_code in (0, None), result.stderr
    lines = result.stderr.splitlines()
    assert "360 training pairs → batches of 2,048 tokens, dropout 0.3, tied output embeddings, warm-up 100 updates, learning rate 0.001, subword sampling 1, lexical model, attention guided by the built-in aligner (options override)" in lines
    assert "warning: only 360 training pairs: expect a weak model (a few thousand pairs is already a small corpus)." in lines
    assert any(line.startswith("warning: 360 of 360 dev pairs are also training pairs") for line in lines)
    import json

    stored = json.loads((tmp_path / "m" / "config.json").read_text())["info"]["train_config"]
    assert (stored["batch_tokens"], stored["dropout"], stored["tied_output"], stored["warmup_steps"]) == (2048, 0.3, True, 100)


@pytest.mark.parametrize("saved, current, words", [
    ({"dropout": None}, {"dropout": 0.3}, ["--dropout unset (chosen from the corpus size), not 0.3"]),
    ({"beam_size": 5}, {"beam": 5}, ["another version of attncli", "--beam"])])
def test_resume_messages_name_unset_and_unknown_options(tmp_path, saved, current, words):
    """A run left to the recipe shows its unset option as such, not as 'None'; a state of another
    version names the option that differs."""
    from attncli.checkpoint import check_fingerprint
    from attncli.errors import OptionError

    files = {"corpus": None, "dev": None, "guides": None, "init_from": None}
    with pytest.raises(OptionError) as refused:
        check_fingerprint({"config": saved}, {"config": current, **files}, tmp_path / "m.train-state")
    assert all(word in str(refused.value) for word in words), str(refused.value)


def write_many_characters_corpus(path, characters: int) -> None:
    """300 pairs whose sources hold `characters` distinct CJK characters between them."""
    lines = ["".join(chr(0x4E00 + (i * 10 + k) % characters) for k in range(10)) + f"\tsentence {i}\n"
             for i in range(300)]
    path.write_text("".join(lines), encoding="utf-8")


def test_the_recipe_vocabulary_grows_to_hold_every_character(tmp_path):
    """Chinese or Japanese text has more distinct characters than the recipe's 2,000 pieces: the
    vocabulary the recipe chose grows (one piece per character) rather than failing on an
    option the user never typed; the note and the config say the size the model has."""
    from attncli.training_data import prepare_data

    write_many_characters_corpus(tmp_path / "train.tsv", 2_500)
    events = []
    data = prepare_data(tmp_path / "train.tsv", None, None, TrainConfig(), None, events.append, tmp_path / "cache")
    assert data.config.vocab_size == len(data.src_tok) >= 2_500
    note = next(event.message for event in events if event.kind == "note")
    assert f"more distinct characters than 2,000: vocabulary {len(data.src_tok):,}" in note
    assert not [event for event in events if event.kind == "warning" and "SentencePiece" in event.message]


def test_a_typed_vocabulary_size_too_small_for_the_characters_is_an_error(tmp_path):
    from attncli.errors import OptionError
    from attncli.training_data import prepare_data

    write_many_characters_corpus(tmp_path / "train.tsv", 300)
    with pytest.raises(OptionError, match=r"^--vocab-size must be at least \d+ for this corpus .*got 200\.$"):
        prepare_data(tmp_path / "train.tsv", None, None, TrainConfig(vocab_size=200), None, cache_dir=tmp_path / "cache")


def test_fewer_pieces_than_the_recipe_chose_names_the_recipe_not_the_option(tmp_path):
    from attncli.training_data import prepare_data

    (tmp_path / "train.tsv").write_text("".join(f"frase {i}\tphrase {i}\n" for i in range(1200)), encoding="utf-8")
    events = []
    prepare_data(tmp_path / "train.tsv", None, None, TrainConfig(), None, events.append, tmp_path / "cache")
    said = [event.message for event in events if event.kind == "warning" and "SentencePiece" in event.message]
    assert len(said) == 1 and "not the 2,000 the recipe chose:" in said[0]


def test_a_typed_vocabulary_size_does_not_reuse_a_cache_grown_for_the_recipe(tmp_path):
    """The corpus cache of a recipe run whose vocabulary grew to fit the characters is not the
    one a run with that very --vocab-size needs: that run gets its error, not 2,500+ pieces."""
    from attncli.errors import OptionError
    from attncli.training_data import prepare_data

    write_many_characters_corpus(tmp_path / "train.tsv", 2_500)
    grown = prepare_data(tmp_path / "train.tsv", None, None, TrainConfig(), None, cache_dir=tmp_path / "cache")
    assert grown.config.vocab_size > 2_000
    with pytest.raises(OptionError, match=r"^--vocab-size must be at least"):
        prepare_data(tmp_path / "train.tsv", None, None, TrainConfig(vocab_size=2_000), None, cache_dir=tmp_path / "cache")
