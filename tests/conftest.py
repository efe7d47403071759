"""Shared fixtures (a tiny model trained in seconds on a slice of Tatoeba es-en) and helpers that
several test files use: the one-line user-error check and a reader for printed tables."""

from __future__ import annotations

import atexit
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from attncli.config import TrainConfig
from attncli.training import train

# Encoded corpora (corpus_cache.py) go to a folder of the test session, not the user's cache; set
# before anything reads the environment, so child processes inherit it too.
os.environ["ATTNCLI_CACHE_DIR"] = tempfile.mkdtemp(prefix="attncli-test-cache-")
atexit.register(shutil.rmtree, os.environ["ATTNCLI_CACHE_DIR"], ignore_errors=True)

DATA = Path(__file__).parent / "data"
SLICE = DATA / "es-en-slice.tsv"

TINY = TrainConfig(vocab_size=300, embed_size=32, hidden_size=32, dropout=0.1, batch_tokens=1200, epochs=4, tied_output=False,
                   warmup_steps=10, learning_rate=0.01, patience=10, threads=1, seed=3)


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory) -> tuple[Path, Path]:
    """Train and dev files: 360 + 40 pairs of the slice."""
    folder = tmp_path_factory.mktemp("corpus")
    lines = SLICE.read_text(encoding="utf-8").splitlines()
    (folder / "train.tsv").write_text("\n".join(lines[40:]) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    return folder / "train.tsv", folder / "dev.tsv"


# A learnable toy task (Spanish number words -> English) so dev loss keeps improving and
# several best states are kept for --average-last: every part of the saved state matters.
ES = "uno dos tres cuatro cinco seis siete ocho nueve diez once doce".split()
EN = "one two three four five six seven eight nine ten eleven twelve".split()

# For tests that run attncli in a child process: one thread, output not held in a buffer.
SUBPROCESS_ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def default_sigint() -> None:
    """`preexec_fn` for a child that a test sends Ctrl-C: SIGINT's default action, which a child
    would otherwise not have when pytest itself runs in the background (`nohup … &` ignores
    SIGINT, and ignored signals are inherited), so the test tests attncli, not its launcher."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def numbers(tmp_path_factory) -> tuple[Path, Path]:
    """Train and dev files of the number-words task: 300 + 30 pairs of 2 to 5 words."""
    folder = tmp_path_factory.mktemp("numbers")
    rng = random.Random(0)

    def pair() -> str:
        picks = [rng.randrange(len(ES)) for _ in range(rng.randint(2, 5))]
        return " ".join(ES[i] for i in picks) + "\t" + " ".join(EN[i] for i in picks)

    (folder / "train.tsv").write_text("\n".join(pair() for _ in range(300)) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("\n".join(pair() for _ in range(30)) + "\n", encoding="utf-8")
    return folder / "train.tsv", folder / "dev.tsv"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, corpus_files) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny"
    train(corpus_files[0], corpus_files[1], out, TINY)
    return out


WATCHED_OWN = "Tengo un perro."                                 # watched without a target: the model's own translation
WATCHED_PAIR = ("Tom no es un ladrón.", "Tom is not a thief.", "0-0 1-2 2-1 3-3 4-4")   # watched with its gold links


@pytest.fixture(scope="session")
def watched_run(corpus_files, tmp_path_factory):
    """A tiny model trained for 2 epochs (12 updates, a validation every 3) watching two sentences
    (train --watch); its folder and its config.json's info."""
    folder = tmp_path_factory.mktemp("watched")
    (folder / "watch.tsv").write_text("\t".join(WATCHED_PAIR) + "\n", encoding="utf-8")
    config = replace(TINY, epochs=2, valid_every=3, watch=(WATCHED_OWN,), watch_file=str(folder / "watch.tsv"))
    train(corpus_files[0], corpus_files[1], folder / "m", config)
    info = json.loads((folder / "m" / "config.json").read_text(encoding="utf-8"))["info"]
    return folder / "m", info


@pytest.fixture(scope="session")
def translator(tiny_model_dir):
    from attncli.translator import Translator

    return Translator.load(tiny_model_dir, threads=1)


@pytest.fixture(autouse=True)
def single_thread():
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_personal_models(monkeypatch, tmp_path_factory):
    """A developer's own models ($ATTNCLI_MODELS, the user data folder) must not stand in for the
    shipped ones during the tests."""
    monkeypatch.delenv("ATTNCLI_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg-data"))


class CliResult:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = code, stdout, stderr


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `attncli ARGS` in-process through the real entry point; stdin given as bytes."""
    from attncli.cli import main

    def invoke(args: list[str], stdin: bytes = b"") -> CliResult:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def only_notes(stderr: str) -> bool:
    """True when stderr holds nothing but attncli's notes (unknown characters, unseen words)."""
    return all(line.startswith("attncli: note: ") for line in stderr.splitlines())


def assert_one_line_error(result: CliResult, *words: str, code: int | None = None, stdout: str | None = "") -> None:
    """A user error: exit status `code` (any failure when None), `stdout` on stdout (unchecked when
    None), and on stderr exactly one line `attncli: error: ...` that names every one of `words`."""
    if code is None:
        assert result.exit_code not in (0, None), (result.exit_code, result.stdout, result.stderr)
    else:
        assert result.exit_code == code, (result.exit_code, result.stderr)
    if stdout is not None:
        assert result.stdout == stdout, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("attncli: error: ") and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def table_cells(text: str) -> tuple[list[str], list[list[str]]]:
    """The one rich table printed in `text` (plain, no colours): its header cells and its body rows,
    each a list of cell texts without padding. Header lines are drawn with ┃, body lines with │."""
    header = [_cells(line, "┃") for line in text.splitlines() if line.startswith("┃")]
    rows = [_cells(line, "│") for line in text.splitlines() if line.startswith("│")]
    assert len(header) == 1, text
    return header[0], rows


def _cells(line: str, bar: str) -> list[str]:
    return [cell.strip() for cell in re.split(re.escape(bar), line)[1:-1]]
