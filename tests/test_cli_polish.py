"""The command line and the API (issue 16): --version, -h, shell completion, argument names and
command summaries; the same options wherever they make sense; progress on a terminal only;
interactive translate; option values refused in the library; `from attncli import Translator`."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SUBPROCESS_ENV, assert_one_line_error, default_sigint, only_notes

from attncli.alignment import format_pharaoh
from attncli.modelfile import read_source_words
from attncli.source_words import unseen, unseen_note
from attncli.translator import Translator


def all_commands() -> list[list[str]]:
    """Every command and group of the CLI, found in the app (so a new command is checked too)."""
    import click
    import typer

    from attncli.cli import app

    found: list[list[str]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = all_commands()
README = Path(__file__).parent.parent / "README.md"


# -- 1. --version, -h, completion, usage lines, command summaries ---------------------------------

def test_version_comes_from_the_package_metadata(run_cli):
    result = run_cli(["--version"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"attncli {importlib.metadata.version('attncli')}\n"
    import attncli

    assert attncli.__version__ == importlib.metadata.version("attncli")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "attncli")
def test_dash_h_is_help_on_every_command(run_cli, command):
    short, long = run_cli([*command, "-h"]), run_cli([*command, "--help"])
    assert short.exit_code == 0, short.stderr
    assert short.stdout.startswith(f"Usage: attncli {' '.join(command)}".rstrip() + " ")
    assert short.stdout == long.stdout
    assert "-h, --help" in short.stdout


@pytest.mark.parametrize("command", COMMANDS[1:], ids=lambda c: " ".join(c))
def test_usage_names_arguments_alike(run_cli, command):
    """Every argument is named in capitals, as the command's own help text calls it (SENTENCE,
    CORPUS, TEST, GOLD): `[NAME]` when optional, `{NAME}` when required."""
    help_text = run_cli([*command, "-h"]).stdout
    usage = help_text.splitlines()[0]
    after_options = usage.split("[OPTIONS]", 1)[1].split()
    for argument in after_options:
        if argument in ("COMMAND", "[ARGS]..."):
            continue
        assert re.fullmatch(r"\[[A-Z]+\]|\{[A-Z]+\}", argument), usage
        listed = re.search(rf"^  {argument.strip('[]{{}}')}  ", help_text, re.MULTILINE)
        assert listed, (argument, help_text)


def test_command_summaries_are_whole_sentences(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for command in ([], ["inspect"]):
        text = run_cli([*command, "-h"]).stdout
        summaries = text.split("Commands:\n", 1)[1].splitlines()
        assert len(summaries) >= 3, text
        for line in summaries:
            assert line.rstrip().endswith(".") and "..." not in line, line


def test_shell_completion_is_offered_and_completes(run_cli, monkeypatch):
    assert "--install-completion" in run_cli(["-h"]).stdout
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    script = run_cli(["--show-completion", "bash"])
    assert script.exit_code == 0 and "_ATTNCLI_COMPLETE=complete_bash" in script.stdout, script.stderr
    env = dict(SUBPROCESS_ENV, _ATTNCLI_COMPLETE="complete_bash", COMP_WORDS="attncli inspect al", COMP_CWORD="2")
    done = subprocess.run([sys.executable, "-c", "from attncli.cli import entry; entry()"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["alignment"], (done.stdout, done.stderr)


# -- 2. the same options wherever they make sense ---------------------------------------------------

def test_evaluate_takes_batch_tokens_and_writes_its_translations(run_cli, tiny_model_dir, corpus_files, tmp_path):
    out = tmp_path / "hyp.txt"
    result = run_cli(["evaluate", corpus_files[1], "-m", tiny_model_dir, "--beam", "1", "--batch-tokens", "50",
                      "--output", out, "--json"])
    assert result.exit_code == 0, result.stderr
    sources = [line.split("\t")[0] for line in corpus_files[1].read_text(encoding="utf-8").splitlines()]
    assert out.read_text(encoding="utf-8") == "\n".join(Translator.load(tiny_model_dir).translate(sources, 1)) + "\n"
    assert json.loads(result.stdout)["sentences"] == len(sources)
    assert_one_line_error(run_cli(["evaluate", corpus_files[1], "-m", tiny_model_dir, "--output", tmp_path / "no" / "x"]),
                          "--output", "no/x", code=1)


def test_inspect_alignment_takes_precision_and_length_penalty(run_cli, tiny_model_dir):
    result = run_cli(["inspect", "alignment", "Tengo un perro.", "-m", tiny_model_dir, "--precision", "float32",
                      "--length-penalty", "0.2", "--beam", "3", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    expected = Translator.load(tiny_model_dir, precision="float32", sentences=1).align(
        "Tengo un perro.", beam_size=3, length_penalty=0.2)
    assert json.loads(result.stdout)["tgt_words"] == expected.tgt_words


@pytest.mark.parametrize("output_format", ["pharaoh", "json", "table"])
def test_inspect_alignment_reads_stdin_one_sentence_a_line(run_cli, tiny_model_dir, output_format):
    lines = ["Tengo un perro.", "", "¿Dónde está la estación?"]
    result = run_cli(["inspect", "alignment", "-m", tiny_model_dir, "--format", output_format, "--batch-size", "2"],
                     stdin=("\n".join(lines) + "\n").encode())
    assert result.exit_code == 0, result.stderr
    translator = Translator.load(tiny_model_dir, sentences=1)
    settings = translator.link_defaults
    expected = [translator.align(line) for line in lines if line]
    if output_format == "pharaoh":
        assert result.stdout.split("\n") == [format_pharaoh(expected[0].links(settings.min_weight, settings.mutual)), "",
                                             format_pharaoh(expected[1].links(settings.min_weight, settings.mutual)), ""]
    elif output_format == "json":
        rows = result.stdout.split("\n")
        assert rows[1] == "" and [json.loads(rows[i])["tgt_words"] for i in (0, 2)] == [a.tgt_words for a in expected]
    else:
        assert result.stdout.count("target \\ source") == 2 and "\n\n" in result.stdout


def test_inspect_alignment_names_the_stdin_line_it_cannot_align(run_cli, tiny_model_dir):
    stdin = "Tengo un perro.\n\n" + "palabra " * 10_000 + "\nHola.\n"
    result = run_cli(["inspect", "alignment", "-m", tiny_model_dir, "--format", "pharaoh"], stdin=stdin.encode())
    assert_one_line_error(result, "stdin:3", "too long", code=1, stdout=None)
    assert result.stdout.count("\n") == 2                   # lines 1 and 2 were aligned and written


# -- 3. progress on a terminal only ------------------------------------------------------------------

def run_with_terminal_stderr(args: list[str], stdin_path: Path | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """Run `attncli ARGS` with stderr on a pseudo-terminal, stdout on a pipe: (status, stdout, stderr)."""
    master, slave = pty.openpty()
    env = dict(SUBPROCESS_ENV, TERM="xterm-256color", COLUMNS="120")
    with open(stdin_path or os.devnull, "rb") as stdin:
        child = subprocess.Popen([sys.executable, "-m", "attncli", *map(str, args)], stdin=stdin,
                                 stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    stderr = read_until_closed(master, timeout)
    stdout = child.communicate(timeout=timeout)[0].decode()
    os.close(master)
    return child.returncode, stdout, stderr


def read_until_closed(fd: int, timeout: float) -> str:
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:         # the other side closed (EIO on Linux)
                break
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


@pytest.fixture(scope="module")
def big_input(tmp_path_factory, corpus_files) -> Path:
    sources = [line.split("\t")[0] for line in corpus_files[1].read_text(encoding="utf-8").splitlines()]
    path = tmp_path_factory.mktemp("big") / "big.txt"
    path.write_text("\n".join(sources * 30) + "\n", encoding="utf-8")         # 1,200 lines
    return path


def test_translate_stdin_shows_progress_on_a_terminal(tiny_model_dir, big_input):
    status, stdout, stderr = run_with_terminal_stderr(["translate", "-m", tiny_model_dir, "--beam", "1", "--threads", "1"],
                                                      big_input)
    assert status == 0, stderr
    assert len(stdout.splitlines()) == 1200
    assert "translating" in stderr and "/1,200 lines" in stderr, stderr      # the total: stdin is a file


def test_evaluate_and_inspect_file_show_progress_on_a_terminal(tiny_model_dir, corpus_files):
    status, stdout, stderr = run_with_terminal_stderr(["evaluate", corpus_files[1], "-m", tiny_model_dir, "--beam", "1"])
    assert status == 0 and stdout.startswith("BLEU"), stderr
    assert "evaluating" in stderr and "/40 lines" in stderr, stderr
    status, stdout, stderr = run_with_terminal_stderr(["inspect", "alignment", "--file", corpus_files[1], "-m",
                                                       tiny_model_dir, "--format", "pharaoh"])
    assert status == 0 and len(stdout.splitlines()) == 40, stderr
    assert "aligning" in stderr and "/40 lines" in stderr, stderr


def test_no_progress_when_stderr_is_not_a_terminal(run_cli, tiny_model_dir, big_input, corpus_files):
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin=big_input.read_bytes())
    assert result.exit_code == 0 and only_notes(result.stderr)
    result = run_cli(["evaluate", corpus_files[1], "-m", tiny_model_dir, "--beam", "1"])
    assert result.exit_code == 0 and only_notes(result.stderr)
    result = run_cli(["inspect", "alignment", "--file", corpus_files[1], "-m", tiny_model_dir, "--format", "pharaoh"])
    assert result.exit_code == 0 and only_notes(result.stderr)


# -- 4. interactive translate --------------------------------------------------------------------------

class Terminal:
    """`attncli ARGS` with stdin, stdout and stderr on one pseudo-terminal, as typed at a shell."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        self.child = subprocess.Popen([sys.executable, "-m", "attncli", *map(str, args)], stdin=slave, stdout=slave,
                                      stderr=slave, env=dict(SUBPROCESS_ENV, TERM="xterm-256color"),
                                      preexec_fn=default_sigint)
        os.close(slave)
        self.seen = ""

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"no {text!r} in {self.seen!r}"
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace").replace("\r\n", "\n")
                except OSError:
                    break
        return self.seen

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self, timeout: float = 60) -> int:
        status = self.child.wait(timeout=timeout)
        read_until_closed(self.master, 2)
        os.close(self.master)
        return status


def note_after(model: Path, line: str) -> str:
    """The stderr note an interactive session shows right after `line`: the words of it the
    model's training corpus lacks (the tiny model's has "tengo" but not "hambre")."""
    words = unseen(read_source_words(model), line)
    assert line != "Tengo hambre." or words == ["hambre"]          # the check of where the note goes holds
    return f"attncli: note: {unseen_note(words)}\n" if words else ""


def test_translate_on_a_terminal_translates_each_typed_line(tiny_model_dir):
    expected = Translator.load(tiny_model_dir, sentences=1).translate(["Tengo hambre.", "¿Dónde está el perro?"], 1)
    terminal = Terminal(["translate", "-m", tiny_model_dir, "--beam", "1"])
    try:
        terminal.wait_for("> ")                                  # a prompt, before anything is typed
        terminal.type("Tengo hambre.\n".encode())
        terminal.wait_for(f"Tengo hambre.\n{expected[0]}\n{note_after(tiny_model_dir, 'Tengo hambre.')}> ")   # translated at once, its note, the next prompt
        terminal.type("\n¿Dónde está el perro?\n".encode())      # a blank line is skipped
        terminal.wait_for(f"{expected[1]}\n{note_after(tiny_model_dir, '¿Dónde está el perro?')}> ")
        terminal.type(b"\x04")                                   # Ctrl-D
        assert terminal.close() == 0
    finally:
        terminal.child.kill()
    assert "Traceback" not in terminal.seen and "error" not in terminal.seen


def test_inspect_alignment_on_a_terminal_aligns_each_typed_line(tiny_model_dir):
    translator = Translator.load(tiny_model_dir, sentences=1)
    links = translator.align("Tengo hambre.").links(translator.link_defaults.min_weight, translator.link_defaults.mutual)
    terminal = Terminal(["inspect", "alignment", "-m", tiny_model_dir, "--format", "pharaoh"])
    try:
        terminal.wait_for("> ")
        terminal.type("Tengo hambre.\n".encode())
        terminal.wait_for(f"Tengo hambre.\n{format_pharaoh(links)}\n{note_after(tiny_model_dir, 'Tengo hambre.')}> ")
        terminal.type(b"\x04")
        assert terminal.close() == 0
    finally:
        terminal.child.kill()


def test_ctrl_c_ends_interactive_translate_cleanly(tiny_model_dir):
    terminal = Terminal(["translate", "-m", tiny_model_dir])
    try:
        terminal.wait_for("> ")
        terminal.child.send_signal(signal.SIGINT)
        assert terminal.close() == 0
    finally:
        terminal.child.kill()
    assert "Traceback" not in terminal.seen and "interrupted" not in terminal.seen


def test_bad_options_stop_interactive_translate_before_the_prompt(tiny_model_dir):
    terminal = Terminal(["translate", "-m", tiny_model_dir, "--beam", "0"])
    try:
        terminal.wait_for("--beam")
        assert terminal.close() == 1
    finally:
        terminal.child.kill()
    assert "> " not in terminal.seen


# -- 5. option values ------------------------------------------------------------------------------------

# {tiny}: conftest's tiny model; {dev}: its dev pairs; {tmp}: a folder with empty.align (no links)
BAD_VALUES = [
    (["translate", "hola", "-m", "{tiny}", "--length-penalty", "nan"], ["--length-penalty", "nan"]),
    (["translate", "hola", "-m", "{tiny}", "--length-penalty", "inf"], ["--length-penalty", "inf"]),
    (["translate", "hola", "-m", "{tiny}", "--length-penalty", "1e308"], ["--length-penalty"]),
    (["translate", "hola", "-m", "{tiny}", "--length-penalty", "-1"], ["--length-penalty"]),
    (["evaluate", "{dev}", "-m", "{tiny}", "--length-penalty", "1e308"], ["--length-penalty"]),
    (["evaluate", "{dev}", "-m", "{tiny}", "--length-penalty", "nan"], ["--length-penalty"]),
    (["inspect", "alignment", "hola", "-m", "{tiny}", "--length-penalty", "inf"], ["--length-penalty"]),
    (["train", "{dev}", "--length-penalty", "nan"], ["--length-penalty"]),
    (["train", "{dev}", "--length-penalty", "11"], ["--length-penalty", "11"]),    # the default it stores must be usable
    (["translate", "hola", "-m", "{tiny}", "--batch-tokens", "0"], ["--batch-tokens", "0"]),
    (["translate", "hola", "-m", "{tiny}", "--batch-tokens", "-5"], ["--batch-tokens", "-5"]),
    (["evaluate", "{dev}", "-m", "{tiny}", "--batch-tokens", "0"], ["--batch-tokens"]),
    (["inspect", "alignment", "Hola", "-m", "{tiny}", "--gold-file", "{tmp}/empty.align"], ["--gold-file", "--file"]),
    (["inspect", "alignment", "--file", "{dev}", "-m", "{tiny}", "--gold", "0-0"], ["--gold", "--file"]),
    (["inspect", "alignment", "-m", "{tiny}", "--target", "Hello"], ["--target", "stdin"]),
    (["inspect", "alignment", "Hola", "--file", "{dev}", "-m", "{tiny}"], ["SENTENCE", "--file"]),
    (["inspect", "alignment", "Tengo un perro.", "-m", "{tiny}", "--target", "I have a dog.", "--gold", "0-0 9-9"],
     ["--gold", "9-9"]),
    (["inspect", "alignment", "Tengo un perro.", "-m", "{tiny}", "--target", "I have a dog.", "--gold", "0-0 2p4"],
     ["--gold", "2p4"]),
    (["inspect", "aer", "{tmp}/empty.align", "{tmp}/empty.align"], ["no links to score", "empty.align"]),
]


@pytest.mark.parametrize("args,words", BAD_VALUES, ids=[f"{n}-{' '.join(c[0][:2])}" for n, c in enumerate(BAD_VALUES)])
def test_bad_option_values_are_one_line_and_status_1(run_cli, tmp_path, tiny_model_dir, corpus_files, args, words):
    (tmp_path / "empty.align").write_text("\n\n")
    fill = {"tmp": tmp_path, "tiny": tiny_model_dir, "dev": corpus_files[1]}
    assert_one_line_error(run_cli([str(a).format(**fill) for a in args]), *[w.format(**fill) for w in words], code=1)


def test_gold_links_in_range_are_still_taken(run_cli, tiny_model_dir):
    result = run_cli(["inspect", "alignment", "Tengo un perro.", "-m", tiny_model_dir, "--target", "I have a dog.",
                      "--gold", "0-0 0-1 2p3"])
    assert result.exit_code == 0, result.stderr


# -- 6. the Python API ---------------------------------------------------------------------------------------

def test_import_attncli_exports_the_api_without_torch():
    script = ("import sys, attncli\nassert 'torch' not in sys.modules\n"
              "from attncli import Translator, train, TrainConfig, AttncliError, OptionError\n"
              "assert Translator.__module__ == 'attncli.translator' and callable(train)\n"
              "assert issubclass(OptionError, AttncliError) and TrainConfig().beam == 5\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    result = subprocess.run([sys.executable, "-c", "import attncli, sys; print('torch' in sys.modules)"],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout == "False\n", result.stderr


def test_translate_takes_a_string_or_a_list(tiny_model_dir):
    translator = Translator.load(tiny_model_dir, sentences=1)
    one = translator.translate("Tengo hambre.")
    assert isinstance(one, str) and one == translator.translate(["Tengo hambre."])[0]
    assert translator.translate(["Tengo hambre.", "Hola."]) == [one, translator.translate("Hola.")]


def test_the_readme_python_example_runs():
    """The README's Python example, as written (the shipped es-en model)."""
    text = README.read_text(encoding="utf-8")
    example = re.search(r"```python\n(from attncli import .*?)```", text, re.DOTALL)
    assert example, "no Python example in the README"
    result = subprocess.run([sys.executable, "-c", example.group(1)], capture_output=True, text=True, timeout=120,
                            env=SUBPROCESS_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and "[" not in result.stdout       # a string, not a list
