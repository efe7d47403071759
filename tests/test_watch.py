"""`train --watch`: the attention of chosen sentences, recorded at every validation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from attncli.config import TrainConfig
from attncli.errors import CorpusError, OptionError
from attncli.training import TrainingInterrupted, train
from attncli.watch import WatchedPair, read_watch_file
from conftest import assert_one_line_error

RUN = TrainConfig(vocab_size=40, embed_size=16, hidden_size=16, dropout=0.1, batch_tokens=150, epochs=4,
                  warmup_steps=5, learning_rate=0.02, patience=10, threads=1, seed=5, valid_every=6,
                  fp16_weights=False, tied_output=False)


@pytest.fixture(scope="module")
def toy(numbers, tmp_path_factory):
    """The number-words task (conftest), with a watch file whose pair has gold links."""
    folder = numbers[0].parent
    (folder / "watch.tsv").write_text("dos tres\ttwo three\t0-0 1-1\n", encoding="utf-8")
    return folder, numbers[1].read_text(encoding="utf-8").splitlines()[0].split("\t")


def test_every_validation_records_the_watched_sentences(toy, tmp_path):
    folder, (dev_source, dev_target) = toy
    config = replace(RUN, watch=(dev_source, "doce once diez nueve ocho seis"), watch_file=str(folder / "watch.tsv"))
    result = train(folder / "train.tsv", folder / "dev.tsv", tmp_path / "m", config)
    info = json.loads((tmp_path / "m" / "config.json").read_text())["info"]
    assert info["watch"] == [{"source": dev_source, "target": dev_target, "gold": None},
                             {"source": "doce once diez nueve ocho seis", "target": None, "gold": None},
                             {"source": "dos tres", "target": "two three", "gold": "0-0 1-1"}]
    assert len(result.history) >= 3 and all(len(record["watch"]) == 3 for record in result.history)
    for record in result.history:
        given, own, from_file = record["watch"]
        assert given["target_words"] == dev_target.split() and from_file["target_words"] == ["two", "three"]
        for snapshot, source in zip(record["watch"], (dev_source, "doce once diez nueve ocho seis", "dos tres")):
            if not snapshot["target_words"]:             # an empty own translation early on
                assert snapshot["weights"] == []
                continue
            weights = np.array(snapshot["weights"])
            assert weights.shape == (len(snapshot["target_words"]), len(source.split()) + 1)
            np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-3)
    first, last = (np.array(r["watch"][2]["weights"]) for r in (result.history[0], result.history[-1]))
    assert not np.array_equal(first, last)                       # the alignment changed as it trained


def test_a_resumed_run_records_what_an_uninterrupted_one_does(toy, tmp_path):
    folder, (dev_source, _) = toy
    config = replace(RUN, watch=(dev_source,))
    reference = train(folder / "train.tsv", folder / "dev.tsv", tmp_path / "ref", config)

    def stop_at_8(event):
        if event.kind == "step" and event.step == 8:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(folder / "train.tsv", folder / "dev.tsv", tmp_path / "m", config, on_event=stop_at_8)
    resumed = train(folder / "train.tsv", folder / "dev.tsv", tmp_path / "m", config, resume=True)
    strip = lambda history: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in history]   # noqa: E731
    assert strip(resumed.history) == strip(reference.history)


def test_watch_file_format(tmp_path):
    path = tmp_path / "w.tsv"
    path.write_text("hola\thello\n\nadiós\tbye\t0-0\n", encoding="utf-8")
    assert read_watch_file(path) == [WatchedPair("hola", "hello"), WatchedPair("adiós", "bye", "0-0")]
    path.write_text("hola\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=":1:"):
        read_watch_file(path)
    path.write_text("hola\thello\t0-x\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=":1:"):
        read_watch_file(path)


def test_too_many_or_empty_watched_sentences_are_one_line(run_cli, toy, tmp_path):
    folder, _ = toy
    args = ["train", folder / "train.tsv", "--dev", folder / "dev.tsv", "--out", tmp_path / "m"]
    many = [option for i in range(9) for option in ("--watch", f"uno {i}")]
    assert_one_line_error(run_cli(args + many), "--watch", "at most 8")
    assert_one_line_error(run_cli(args + ["--watch", " "]), "--watch")
    assert not (tmp_path / "m").exists()


def test_a_watched_sentence_too_long_is_refused_before_training(toy, tmp_path):
    folder, _ = toy
    events = []
    with pytest.raises(OptionError, match="--watch"):
        train(folder / "train.tsv", folder / "dev.tsv", tmp_path / "m", replace(RUN, watch=(" ".join(["uno"] * 450),)),
              on_event=events.append)
    assert not any(event.kind == "step" for event in events) and not (tmp_path / "m").exists()


def test_the_model_card_keeps_every_validation(toy, tmp_path, monkeypatch):
    """Validations after the best one update config.json's history too (not only the weights'
    validation), so `inspect history` sees the whole run."""
    import attncli.training as training

    real_judge = training.judge
    monkeypatch.setattr(training, "judge", lambda *args: replace(real_judge(*args), best=args[5] <= 6))
    folder, _ = toy
    result = train(folder / "train.tsv", folder / "dev.tsv", tmp_path / "m", RUN)
    info = json.loads((tmp_path / "m" / "config.json").read_text())["info"]
    assert result.best_step == 6 and len(result.history) > 2
    assert [r["step"] for r in info["history"]] == [r["step"] for r in result.history]
