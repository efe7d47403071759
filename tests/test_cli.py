"""The CLI end to end: train, translate, inspect alignment (tables cell by cell), evaluate, aer.
User errors are in test_cli_errors.py."""

import json

import numpy as np
import pytest
from conftest import table_cells

from attncli.alignment import word_alignment
from attncli.render import alignment_grid


def percent_cell(weight: float) -> str | None:
    """The table's text for a weight (render._cell), or None when float rounding could go either way."""
    percent = weight * 100
    if abs(percent % 1 - 0.5) < 1e-3:
        return None
    return "·" if round(percent) == 0 else str(round(percent))


def assert_table_shows(stdout: str, columns: list[str], rows: list[str], weights: list[list[float]]) -> None:
    """The printed table has these column and row names, and each cell holds its weight in %."""
    header, body = table_cells(stdout)
    assert header == ["target \\ source", *columns, "</s>"]
    assert [row[0] for row in body] == rows
    for row, row_weights in zip(body, weights):
        expected = [percent_cell(w) for w in row_weights]
        assert [cell if want is not None else None for cell, want in zip(row[1:], expected)] == expected, row


def test_train_translate_inspect_end_to_end(run_cli, corpus_files, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")        # rich's width: wide enough that no cell is cropped
    train_file, dev_file = corpus_files
    out = tmp_path / "model"
    result = run_cli(["train", train_file, "--dev", dev_file, "--out", out, "--epochs", "2", "--vocab-size", "200",
                      "--embed-size", "16", "--hidden-size", "16", "--batch-tokens", "1500", "--threads", "1"])
    assert result.exit_code == 0, result.stderr
    assert f"model: {out}" in result.stdout and "best dev BLEU" in result.stdout
    assert (out / "model.safetensors").is_file()

    result = run_cli(["translate", "¿Dónde está la estación de tren?", "--model", out])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1

    result = run_cli(["translate", "-m", out, "--beam", "2"], stdin="hola\n\nadiós\n".encode())
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3 and result.stdout.splitlines()[1] == ""

    result = run_cli(["inspect", "alignment", "Tengo un perro.", "-m", out, "--target", "I have a [b] dog.", "--format", "json"])
    data = json.loads(result.stdout)
    assert data["src_words"] == ["Tengo", "un", "perro."] and data["tgt_words"] == ["I", "have", "a", "[b]", "dog."]
    assert len(data["word_weights"]) == 5 and all(abs(sum(row) - 1) < 1e-4 for row in data["word_weights"])
    result = run_cli(["inspect", "alignment", "Tengo un perro.", "-m", out, "--target", "I have a [b] dog."])
    assert result.exit_code == 0, result.stderr
    # the table shows the words with punctuation pieces apart ("perro", "."), nothing lost; "[b]"
    # is shown, not read as rich markup (a bracket this tiny model lacks is marked as read,
    # <unk:[>); every cell holds its weight
    shown = alignment_grid(word_alignment(data["src_words"], data["tgt_words"], data["src_pieces"], data["tgt_pieces"],
                                          data["src_word_of_piece"], data["tgt_word_of_piece"],
                                          np.array(data["piece_weights"], np.float32), 0.0))
    assert "".join(shown.columns[:-1]) == "".join(data["src_words"])
    assert_table_shows(result.stdout, shown.columns[:-1], shown.rows, shown.percent / 100)

    result = run_cli(["inspect", "alignment", "Tengo un perro.", "-m", out, "--subwords", "--format", "json"])
    data = json.loads(result.stdout)
    result = run_cli(["inspect", "alignment", "Tengo un perro.", "-m", out, "--subwords"])
    assert result.exit_code == 0, result.stderr
    # pieces, not words, and a last row for the prediction of EOS
    assert_table_shows(result.stdout, data["src_pieces"], [*data["tgt_pieces"], "</s>"], data["piece_weights"])


def test_pharaoh_file_output_is_one_valid_line_per_pair(run_cli, tiny_model_dir, corpus_files):
    dev = corpus_files[1]
    pairs = [line.split("\t") for line in dev.read_text(encoding="utf-8").splitlines()]
    result = run_cli(["inspect", "alignment", "--file", dev, "-m", tiny_model_dir, "--format", "pharaoh", "--batch-size", "7"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == len(pairs)
    for (source, target), line in zip(pairs, lines):
        links = [tuple(map(int, link.split("-"))) for link in line.split()]
        assert len(links) == len(target.split())          # min-weight 0: every target word gets one link
        assert all(0 <= i < len(source.split()) and 0 <= j < len(target.split()) for i, j in links)


def test_gold_marks_and_svg(run_cli, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    command = ["inspect", "alignment", "Tengo un perro.", "-m", tiny_model_dir, "--target", "I have a dog."]
    links = {tuple(link) for link in json.loads(run_cli([*command, "--format", "json"]).stdout)["links"]}
    sure, possible = {(0, 0), (0, 1), (1, 2)}, {(2, 3)}
    picture = tmp_path / "a.svg"
    result = run_cli([*command, "--gold", "0-0 0-1 1-2 2p3", "--save", picture])
    assert result.exit_code == 0, result.stderr
    # each predicted link is marked ✓ (in gold) or ✗ on its own cell, each missed sure link ○
    expected = {(i, j): "✓" if (i, j) in sure | possible else "✗" for i, j in links}
    expected.update({link: "○" for link in sure - links})
    _, rows = table_cells(result.stdout)
    found = {(i - 1, j): cell[-1] for j, row in enumerate(rows) for i, cell in enumerate(row)
             if i > 0 and cell[-1:] in ("✓", "✗", "○")}
    assert found == expected and len(found) >= 3
    assert picture.read_text().startswith("<svg")


def test_evaluate_prints_sacrebleu_scores(run_cli, tiny_model_dir, corpus_files):
    result = run_cli(["evaluate", corpus_files[1], "-m", tiny_model_dir, "--beam", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    assert {"bleu", "chrf", "ter"} <= scores.keys() and "nrefs:1" in scores["bleu_signature"]


def test_aer_command(run_cli, tmp_path):
    (tmp_path / "gold").write_text("0-0 1p1\n0-0\n")
    (tmp_path / "hyp").write_text("0-0 1-1\n0-1\n")
    result = run_cli(["inspect", "aer", tmp_path / "gold", tmp_path / "hyp", "--json"])
    scores = json.loads(result.stdout)
    # A = 3 links, S = 2, |A∩S| = 1, |A∩P| = 2: AER = 1 - 3/5
    assert scores["aer"] == pytest.approx(0.4) and scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(0.5)


def test_empty_stdin_gives_empty_output(run_cli, tiny_model_dir):
    result = run_cli(["translate", "-m", tiny_model_dir], stdin=b"")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
