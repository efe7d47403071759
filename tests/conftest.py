"""Shared fixtures: a tiny model trained in seconds on a slice of Tatoeba es-en."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch

from attncli.config import TrainConfig
from attncli.training import train

DATA = Path(__file__).parent / "data"
SLICE = DATA / "es-en-slice.tsv"

TINY = TrainConfig(vocab_size=300, embed_size=32, hidden_size=32, dropout=0.1, batch_tokens=1200, epochs=4,
                   warmup_steps=10, learning_rate=0.01, patience=10, threads=1, seed=3)


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory) -> tuple[Path, Path]:
    """Train and dev files: 360 + 40 pairs of the slice."""
    folder = tmp_path_factory.mktemp("corpus")
    lines = SLICE.read_text(encoding="utf-8").splitlines()
    (folder / "train.tsv").write_text("\n".join(lines[40:]) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    return folder / "train.tsv", folder / "dev.tsv"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, corpus_files) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny"
    train(corpus_files[0], corpus_files[1], out, TINY)
    return out


@pytest.fixture(scope="session")
def translator(tiny_model_dir):
    from attncli.translator import Translator

    return Translator.load(tiny_model_dir, threads=1)


@pytest.fixture(autouse=True)
def single_thread():
    torch.set_num_threads(1)


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
