"""`attncli inspect history`: training curves, the validations with their learning rate, and the
attention of the sentences watched during training (train --watch) as it formed."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

import attncli.schedule as schedule
from attncli.config import TrainConfig
from attncli.errors import ModelFileError
from attncli.history import read_history, recorded_rates
from attncli.model_info import ModelInfo, WatchedPair
from attncli.modelfile import MODELS_DIR
from attncli.training import train
from conftest import TINY, assert_one_line_error
from conftest import WATCHED_OWN as OWN        # watched_run's sentences
from conftest import WATCHED_PAIR as PAIR


def lines_of(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def body_rows(lines: list[str], start: int = 0) -> list[list[str]]:
    """The body rows of the first table at or after line `start`, as lists of cell texts."""
    rows = []
    for line in lines[start:]:
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.split("│")[1:-1]])
        elif line.startswith("└"):
            return rows
    return rows


def header_cells(lines: list[str], start: int = 0) -> list[str]:
    line = next(line for line in lines[start:] if line.startswith("┃"))
    return [cell.strip() for cell in line.split("┃")[1:-1]]


def test_curves_of_the_shipped_model_fit_80_columns(run_cli):
    history = json.loads((MODELS_DIR / "es-en" / "config.json").read_text(encoding="utf-8"))["info"]["history"]
    result = run_cli(["inspect", "history", "es-en"])
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    lines = lines_of(result.stdout)
    assert max(len(line) for line in lines) <= 80
    assert lines[0] == f"es-en: {len(history)} validations in 7,320 updates (86 min); best dev BLEU 48.56"
    for label in ("dev BLEU and chrF", "dev BLEU", "dev chrF", "dev loss", "updates"):
        assert any(label in line for line in lines), label
    x_ticks = [line for line in lines if re.fullmatch(r"\s*0\s+2,000\s+4,000\s+6,000\s*", line)]
    assert len(x_ticks) == 2                                   # under each panel
    y_ticks = [line.split("┤")[0].strip() for line in lines if "┤" in line]
    assert y_ticks == ["80", "60", "40", "20", "0", "4", "3", "2", "1"]      # scores, then loss
    rows = body_rows(lines)
    assert header_cells(lines) == ["update", "epoch", "min", "dev loss", "BLEU", "chrF"]   # no rate known, no gold
    assert [row[0] for row in rows] == [f"{record['step']:,}" for record in history]
    assert [float(row[4]) for row in rows] == [record["dev_bleu"] for record in history]
    assert [line for line in lines if line.startswith("learning rate")] == [
        "learning rate not shown: this run's history does not record it."]


def test_minutes_on_the_x_axis(run_cli):
    result = run_cli(["inspect", "history", "-m", "es-en", "--x", "minutes"])
    assert result.exit_code == 0, result.stderr
    lines = lines_of(result.stdout)
    assert any(line.strip() == "minutes" for line in lines)
    assert any(re.fullmatch(r"\s*0\s+20\s+40\s+60\s+80\s*", line) for line in lines)   # 86 minutes of training


def test_a_model_without_watched_sentences_says_so_in_one_line(run_cli):
    result = run_cli(["inspect", "history", "es-en"])
    said = [line for line in lines_of(result.stdout) if "watch" in line.lower()]
    assert result.exit_code == 0 and said == [
        "No watched sentences (train --watch SOURCE records how their attention forms)."]
    assert json.loads(run_cli(["inspect", "history", "es-en", "--format", "json"]).stdout)["time_lapse"] == []


@pytest.mark.parametrize("suffix", [".svg", ".png", ".html"])
def test_save_writes_a_picture_that_parses(run_cli, tmp_path, suffix):
    path = tmp_path / f"curves{suffix}"
    result = run_cli(["inspect", "history", "es-en", "--save", path])
    assert result.exit_code == 0 and result.stderr == f"attncli: saved {path}\n", result.stderr
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
        return
    text = data.decode("utf-8")
    if suffix == ".html":                      # the page (test_pages.py): the SVG inside it, no namespace needed
        assert text.startswith("<!DOCTYPE html>") and "http" not in text and "src=" not in text
        text = text[text.index("<svg"): text.index("</svg>") + len("</svg>")]
    root = ElementTree.fromstring(text)
    assert root.tag == ("svg" if suffix == ".html" else "{http://www.w3.org/2000/svg}svg")
    words = " ".join(node.text or "" for node in root.iter())
    for label in ("es-en: training curves", "dev BLEU", "dev chrF", "dev loss", "updates"):
        assert label in words, label


def test_at_shows_the_matrices_of_that_validation(run_cli, watched_run):
    model, info = watched_run
    steps = [record["step"] for record in info["history"]]
    assert steps == [3, 6, 9, 12]
    result = run_cli(["inspect", "history", model, "--at", 6])
    assert result.exit_code == 0, result.stderr
    lines = lines_of(result.stdout)
    titles = [n for n, line in enumerate(lines) if line.startswith("update ")]
    assert [lines[n].split(" · ")[0] for n in titles] == ["update 6", "update 6"]   # one per watched sentence
    assert any(line == f"Watched sentence 2 of 2: {PAIR[0]}" for line in lines)
    assert header_cells(lines, titles[1]) == ["target \\ source", *PAIR[0].split(), "</s>"]
    expected = np.array(info["history"][1]["watch"][1]["weights"])            # the record of update 6
    rows = body_rows(lines, titles[1])
    assert [row[0] for row in rows] == PAIR[1].split()
    shown = [[cell.rstrip("✓✗○") for cell in row[1:]] for row in rows]
    assert shown == [[str(round(w * 100)) if round(w * 100) else "·" for w in row] for row in expected]


def aer_of(weights, gold: str) -> float:
    """AER of each target word's most attended source word (</s> aside) against gold sure links."""
    sure = {tuple(map(int, link.split("-"))) for link in gold.split()}
    links = {(int(np.argmax(row[:-1])), j) for j, row in enumerate(np.array(weights))}
    return 1 - 2 * len(links & sure) / (len(links) + len(sure))


def test_aer_per_validation_with_gold_watched_links(run_cli, watched_run):
    model, info = watched_run
    result = run_cli(["inspect", "history", model])
    lines = lines_of(result.stdout)
    assert header_cells(lines)[-2:] == ["lr after", "AER"]
    expected = [aer_of(record["watch"][1]["weights"], PAIR[2]) for record in info["history"]]
    assert [row[-1] for row in body_rows(lines)] == [f"{aer:.3f}" for aer in expected]
    data = json.loads(run_cli(["inspect", "history", model, "--format", "json"]).stdout)
    assert [v["aer"]["aer"] for v in data["validations"]] == pytest.approx(expected)
    assert [entry["step"] for entry in data["time_lapse"]] == [3, 6, 12]    # first, middle, last
    assert data["time_lapse"][2]["sentences"][1]["weights"] == info["history"][3]["watch"][1]["weights"]
    assert data["watch"] == [{"source": OWN, "target": None, "gold": None}, dict(zip(("source", "target", "gold"), PAIR))]
    # no decay before update 1,000: the warm-up's rate of the update after each validation
    assert [v["learning_rate_after"] for v in data["validations"]] == [
        TINY.learning_rate * min(1.0, (step + 1) / TINY.warmup_steps) * 1.0 for step in (3, 6, 9, 12)]


def test_recorded_learning_rates_are_the_ones_training_used(numbers, tmp_path, monkeypatch):
    """Decay allowed after 10 updates (instead of 1,000), so that a short run decays: the rate
    recorded after each validation is the one the next update reported."""
    monkeypatch.setattr(schedule, "SETTLE_UPDATES", 10)
    config = TrainConfig(vocab_size=40, embed_size=16, hidden_size=16, dropout=0.1, batch_tokens=200, epochs=3,
                         warmup_steps=5, learning_rate=0.03, patience=50, threads=1, seed=5, valid_every=4,
                         fp16_weights=False, tied_output=False)
    events = []
    result = train(numbers[0], numbers[1], tmp_path / "m", config, on_event=events.append)
    reported = {event.step: event.learning_rate for event in events if event.kind == "step"}   # of update step + 1
    rates = recorded_rates(read_history(tmp_path / "m").records)
    assert rates.note == "" and any(rates.decayed)
    checked = [(rate, reported[record["step"] + 1]) for record, rate in zip(result.history, rates.after)
               if record["step"] + 1 in reported]
    assert len(checked) >= 10 and all(rate == used for rate, used in checked)


def test_a_history_without_rates_shows_none():
    history = [{"step": 1000, "epoch": 1, "elapsed_s": 1.0, "dev_loss": 2.0, "dev_bleu": 20.0, "dev_chrf": 1.0}]
    rates = recorded_rates(history)
    assert rates.after == [None] and rates.decayed == [False] and rates.note.startswith("not shown")


def test_watched_sentences_are_typed_in_the_model_card(watched_run):
    _, info = watched_run
    card = ModelInfo.from_dict(info)
    assert card.watch == (WatchedPair(OWN, None), WatchedPair(*PAIR)) and "watch" not in card.extra
    assert card.to_dict() == info and list(card.to_dict()) == list(info)          # same layout, same order
    with pytest.raises(ModelFileError, match=r"info\.watch\[0\]\.target"):
        ModelInfo.from_dict({"watch": [{"source": "hola", "target": 3}]})


def test_errors_are_one_line(run_cli, watched_run, tmp_path):
    model, info = watched_run
    assert_one_line_error(run_cli(["inspect", "history", "es-en", "--at", 400]), "--at 400", "305 and 610")
    assert_one_line_error(run_cli(["inspect", "history", "es-en", "--save", tmp_path / "c.pdf"]), ".svg", ".png")
    assert_one_line_error(run_cli(["inspect", "history", "es-en", "-m", "fr-en"]), "once")
    assert_one_line_error(run_cli(["inspect", "history", "no-such-model"]), "no-such-model")
    assert_one_line_error(run_cli(["inspect", "history", "es-en", "--save", tmp_path / "no" / "c.svg"]),
                          "cannot write", stdout=None)
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    document = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    document["info"]["history"][2]["watch"][1]["weights"] = [[0.5, 0.5]]
    (broken / "config.json").write_text(json.dumps(document), encoding="utf-8")
    assert_one_line_error(run_cli(["inspect", "history", broken]), "history[2].watch[1]", "6 numbers")
    del document["info"]["history"]
    (broken / "config.json").write_text(json.dumps(document), encoding="utf-8")
    assert_one_line_error(run_cli(["inspect", "history", broken]), "no training history")
