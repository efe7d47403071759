"""Streams: stdout may close early (`| head`), Ctrl-C while reading stdin, and blank and CRLF
lines of stdin keep their places in the output."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from conftest import SUBPROCESS_ENV, default_sigint


def test_translate_into_a_closed_pipe_exits_quietly(tiny_model_dir, corpus_files, tmp_path):
    sources = [line.split("\t")[0] for line in corpus_files[1].read_text(encoding="utf-8").splitlines()]
    big = tmp_path / "big.txt"
    big.write_text("\n".join(sources * 60) + "\n", encoding="utf-8")       # 2,400 lines
    with big.open("rb") as stdin:
        translate = subprocess.Popen([sys.executable, "-m", "attncli", "translate", "-m", str(tiny_model_dir),
                                      "--beam", "1", "--threads", "1"], stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=SUBPROCESS_ENV)
        head = subprocess.Popen(["head", "-1"], stdin=translate.stdout, stdout=subprocess.PIPE)
        translate.stdout.close()                        # only head holds the read end now
        first, _ = head.communicate(timeout=120)
        stderr = translate.communicate(timeout=120)[1].decode()
    assert len(first.decode().splitlines()) == 1
    assert stderr == ""                                 # no BrokenPipeError traceback, no message
    assert translate.returncode == 141                  # as a process killed by SIGPIPE; 1 would mean an error


@pytest.mark.parametrize("output_format", ["pharaoh", "table"])     # typer.echo, and rich's console
def test_inspect_alignment_into_a_closed_pipe_exits_quietly(tiny_model_dir, corpus_files, tmp_path, output_format):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(corpus_files[1].read_text(encoding="utf-8") * 20, encoding="utf-8")      # 800 pairs
    inspect = subprocess.Popen([sys.executable, "-m", "attncli", "inspect", "alignment", "-m", str(tiny_model_dir),
                                "--file", str(pairs), "--format", output_format], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=SUBPROCESS_ENV)
    head = subprocess.Popen(["head", "-1"], stdin=inspect.stdout, stdout=subprocess.PIPE)
    inspect.stdout.close()
    first, _ = head.communicate(timeout=120)
    stderr = inspect.communicate(timeout=120)[1].decode()
    assert len(first.decode().splitlines()) == 1
    assert stderr == ""
    assert inspect.returncode == 141


def test_ctrl_c_while_translating_stdin_is_status_130(tiny_model_dir):
    translate = subprocess.Popen([sys.executable, "-m", "attncli", "translate", "-m", str(tiny_model_dir), "--beam", "1"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=SUBPROCESS_ENV,
                                 preexec_fn=default_sigint)
    translate.stdin.write("hola\n".encode() * 500)       # one whole chunk: its output proves we are running
    translate.stdin.flush()
    assert translate.stdout.readline()
    translate.send_signal(signal.SIGINT)                # while it waits for more stdin
    _, stderr = translate.communicate(timeout=60)
    assert translate.returncode == 130
    assert stderr.decode() == "attncli: interrupted.\n"


def test_blank_and_crlf_lines_keep_their_places(run_cli, tiny_model_dir, translator):
    sources = ["¿Dónde está el perro?", "Tengo un gato."]
    expected = translator.translate(sources, beam_size=1)
    stdin = f"{sources[0]}\r\n \t \r\n\r\n{sources[1]}\n\n".encode()
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\n") == [expected[0], "", "", expected[1], "", ""]   # five lines in, five out
