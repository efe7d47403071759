"""User errors through the real entry point: exit status 1 (2 for a bad command line), nothing on
stdout, one line `attncli: error: ...` on stderr that names the culprit, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import SLICE, assert_one_line_error


def bad_files(folder: Path) -> None:
    (folder / "notab.tsv").write_text("hola\tHello\nadiós Goodbye\n", encoding="utf-8")
    (folder / "latin1.tsv").write_bytes("hola\thello\nadiós\tbye\n".encode("latin-1"))
    (folder / "empty.tsv").write_text("\n\n")
    (folder / "twotabs.tsv").write_text("a\tb\tc\n")
    (folder / "emptyside.tsv").write_text("a\t \n")
    (folder / "blank.tsv").write_text("\n  \n\n", encoding="utf-8")
    (folder / "one.tsv").write_text("hola\thello\n", encoding="utf-8")
    (folder / "ok.tsv").write_text("hola\thello\nadiós\tbye\n", encoding="utf-8")
    (folder / "dir").mkdir()


# {tmp}: a folder holding bad_files; {tiny}: conftest's tiny model; {train}, {dev}: the number-words
# corpus (conftest.numbers); {slice}: the 400-pair es-en slice.
TRAIN = ["train", "{train}", "--dev", "{dev}", "--epochs", "1", "--vocab-size", "40", "--embed-size", "8",
         "--hidden-size", "8", "--threads", "1", "--out", "{tmp}/m"]
CASES = [
    # corpora, files and folders
    (["train", "{tmp}/missing.tsv"], ["missing.tsv", "no such file"]),
    (["train", "{tmp}"], ["is a directory"]),
    (["train", "{tmp}/notab.tsv"], ["notab.tsv:2", "no tab"]),
    (["train", "{tmp}/latin1.tsv"], ["latin1.tsv:2", "not UTF-8"]),
    (["train", "{tmp}/empty.tsv"], ["empty.tsv", "no source<TAB>target pairs"]),
    (["train", "{tmp}/twotabs.tsv"], ["twotabs.tsv:1", "2 tabs"]),
    (["train", "{tmp}/emptyside.tsv"], ["emptyside.tsv:1", "target side is empty"]),
    (["train", "{slice}", "--dev", "{tmp}/notab.tsv", "--epochs", "1", "--out", "{tmp}/m"], ["notab.tsv:2"]),
    (["train", "{train}", "--dev", "{tmp}/dir"], ["dir", "is a directory"]),
    (["train", "{train}", "--dev", "{tmp}/blank.tsv"], ["blank.tsv", "no source<TAB>target pairs"]),
    (["train", "{tmp}/one.tsv", "--out", "{tmp}/m"], ["at least two pairs", "--dev"]),
    (["evaluate", "{tmp}/latin1.tsv", "--model", "{tiny}"], ["latin1.tsv:2"]),
    (["evaluate", "{tmp}/dir", "-m", "{tiny}"], ["dir", "is a directory"]),
    (["evaluate", "{tmp}/blank.tsv", "-m", "{tiny}"], ["blank.tsv", "no source<TAB>target pairs"]),
    (["inspect", "alignment", "--file", "{tmp}/missing.tsv", "-m", "{tiny}"], ["missing.tsv", "no such file"]),
    (["inspect", "aer", "{tmp}/missing.align", "{tmp}/notab.tsv"], ["missing.align"]),
    ([*TRAIN[:-2], "--out", "{tmp}/ok.tsv"], ["--out", "ok.tsv", "is a file"]),
    ([*TRAIN[:-2], "--out", "{tmp}/ok.tsv/m"], ["--out", "ok.tsv/m"]),
    ([*TRAIN, "--max-len", "1"], ["--max-len"]),
    (["train", "{slice}", "--vocab-size", "40", "--out", "{tmp}/m"], ["--vocab-size", "at least"]),  # < its characters
    # unknown models
    (["translate", "hola", "--model", "{tmp}/nope"], ["nope"]),
    (["translate", "hola", "--model", "xx-yy"], ["unknown model", "xx-yy"]),
    (["evaluate", "{dev}", "-m", "zz-qq"], ["unknown model", "zz-qq"]),
    (["inspect", "alignment", "hola", "-m", "zz-qq"], ["unknown model", "zz-qq"]),
    (["translate", "hola", "-m", "{tmp}/ok.tsv"], ["ok.tsv"]),
    # option values
    (["translate", "hola", "--model", "{tiny}", "--beam", "0"], ["--beam"]),
    (["translate", "hola", "-m", "{tiny}", "--beam", "-1"], ["--beam"]),
    (["translate", "hola", "-m", "{tiny}", "--beam", "1000"], ["--beam"]),
    (["translate", "hola", "-m", "{tiny}", "--beam", "two"], ["--beam", "two", "int"]),
    (["translate", "hola", "--model", "{tiny}", "--frobnicate"], ["--frobnicate"]),
    (["evaluate", "{dev}", "-m", "{tiny}", "--beam", "0"], ["--beam"]),
    (["inspect", "alignment", "hola", "-m", "{tiny}", "--beam", "0"], ["--beam"]),
    (["inspect", "alignment", "--file", "{dev}", "-m", "{tiny}", "--batch-size", "0"], ["--batch-size"]),
    (["inspect", "alignment", "hola", "-m", "{tiny}", "--min-weight", "2"], ["--min-weight"]),
    (["inspect", "alignment", "hola", "-m", "{tiny}", "--shift", "-1"], ["--shift"]),
    (["inspect", "alignment", "hola", "--model", "{tiny}", "--format", "xml"], ["xml"]),
    (["inspect", "alignment", "hola", "--model", "{tiny}", "--save", "{tmp}/a.png"], [".svg or .html"]),
    (["inspect", "alignment", "--file", "{tmp}/notab.tsv", "--model", "{tiny}", "--save", "{tmp}/a.svg"], ["--save", "--file"]),
    (["train", "{slice}", "--hidden-size", "-4"], ["--hidden-size"]),
    (["train", "{slice}", "--dropout", "1.5"], ["--dropout"]),
    (["train", "{train}", "--embed-size", "-1"], ["--embed-size"]),
    (["train", "{train}", "--vocab-size", "0"], ["--vocab-size"]),
    (["train", "{train}", "--batch-tokens", "-5"], ["--batch-tokens"]),
    (["train", "{train}", "--epochs", "0"], ["--epochs"]),
    (["train", "{train}", "--max-minutes", "-1"], ["--max-minutes"]),
    (["train", "{train}", "--warmup-steps", "-1"], ["--warmup-steps"]),
    (["train", "{train}", "--threads", "-1"], ["--threads"]),
    (["train", "{train}", "--hidden-size", "100000"], ["--hidden-size"]),
    (["train", "{train}", "--learning-rate", "nan"], ["--learning-rate"]),
    (["train", "{train}", "--max-minutes", "inf"], ["--max-minutes"]),
    (["train", "{train}", "--label-smoothing", "1"], ["--label-smoothing"]),
    (["train", "{train}", "--average-last", "0"], ["--average-last"]),
    # empty sentences
    (["translate", "   ", "--model", "{tiny}"], ["empty"]),
    (["translate", "", "-m", "{tiny}"], ["empty"]),
    (["inspect", "alignment", "", "-m", "{tiny}"], ["empty"]),
    (["inspect", "alignment", " \t ", "-m", "{tiny}", "--target", "hello"], ["empty"]),
    # resuming
    (["train", "{train}", "--dev", "{dev}", "--out", "{tmp}/never", "--resume"], ["--resume", "never.train-state"]),
]


@pytest.mark.parametrize("args,words", CASES, ids=[f"{n}-{' '.join(c[0][:2])}" for n, c in enumerate(CASES)])
def test_bad_input_is_one_line_on_stderr(run_cli, tmp_path, tiny_model_dir, numbers, args, words):
    bad_files(tmp_path)
    fill = {"tmp": tmp_path, "tiny": tiny_model_dir, "train": numbers[0], "dev": numbers[1], "slice": SLICE}
    assert_one_line_error(run_cli([str(a).format(**fill) for a in args]), *[w.format(**fill) for w in words])


def test_unreadable_corpus(run_cli, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read a file with mode 000")
    corpus = tmp_path / "secret.tsv"
    corpus.write_text("hola\thello\n")
    corpus.chmod(0)
    assert_one_line_error(run_cli(["train", corpus]), "secret.tsv", "permission denied")


def test_stdin_with_bad_bytes_names_the_line(run_cli, tiny_model_dir):
    result = run_cli(["translate", "-m", tiny_model_dir], stdin=b"hola\n\xff\xfe\n")
    assert_one_line_error(result, "stdin:2", code=1, stdout=None)


def test_negative_threads_for_translate_is_one_line(run_cli, tiny_model_dir):
    assert_one_line_error(run_cli(["translate", "hola", "-m", tiny_model_dir, "--threads", "-1"]), "--threads")


def test_a_too_long_stdin_line_is_named_after_the_lines_before_it(run_cli, tiny_model_dir):
    long_line = " ".join(["palabra"] * 10_000)
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin=f"hola\n\n{long_line}\nadiós\n".encode())
    assert_one_line_error(result, "attncli: error: stdin:3: the sentence is too long", code=1, stdout=None)
    assert len(result.stdout.splitlines()) == 2                # lines 1 and 2 were translated and written


def test_a_too_long_line_stops_with_one_error_line(run_cli, tiny_model_dir):
    """Current behaviour, kept: a line over MAX_INPUT_PIECES stops the stream with exit status 1."""
    stdin = ("hola\n" + "palabra " * 10_000 + "\nadiós\n").encode()
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin=stdin)
    assert_one_line_error(result, "too long", code=1, stdout=None)
    result = run_cli(["translate", "palabra " * 10_000, "-m", tiny_model_dir])
    assert_one_line_error(result, "too long")
