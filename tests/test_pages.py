"""The HTML pages of `inspect step --save` and `inspect history --save` (attncli/pages.py): they
parse, name no web address, and hold the numbers the commands print: every step's `inspect step
--format json` and terminal numbers, every validation of `inspect history --format json` and the
watched sentences' tables. tests/test_pages_browser.py clicks through them in Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import SUBPROCESS_ENV, WATCHED_PAIR, assert_one_line_error
from test_history import body_rows, lines_of

from attncli.pages import embedded_json
from attncli.history_view import NOTHING_WATCHED

SENTENCE = "¿Dónde está el perro?"


class Page(HTMLParser):
    """A page read with Python's HTML parser: its elements' tags and attributes, the text of its
    <script> elements, and its embedded data."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self.doctype = ""
        self._in_script: dict | None = None
        self.feed(text)
        self.close()
        (self.data,) = [json.loads(body) for attributes, body in self.scripts if attributes.get("id") == "data"]

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attributes, body = self.scripts[-1]
            self.scripts[-1] = (attributes, body + data)


def read_page(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text          # nothing to fetch, nothing to follow
    page = Page(text)
    assert page.doctype == "DOCTYPE html"
    links = [value for _, attributes in page.tags for name, value in attributes.items() if name in ("src", "href")]
    assert all(value.startswith("#") for value in links), links      # only links inside the page (the SVG's markers)
    assert [attributes.get("type") for attributes, _ in page.scripts] == ["application/json", None]
    return page


def saved(run_cli, args: list) -> tuple[str, Path]:
    """Run an inspect command with --save PAGE; its stdout and the page."""
    page = Path(args[args.index("--save") + 1])
    result = run_cli(args)
    assert result.exit_code == 0 and result.stderr == f"attncli: saved {page}\n", result.stderr
    return result.stdout, page


def step_json(run_cli, model_dir, *options) -> dict:
    result = run_cli(["inspect", "step", SENTENCE, "-m", model_dir, "--format", "json", *options])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_step_page_holds_every_step_as_inspect_step_prints_it(run_cli, tiny_model_dir, tmp_path):
    stdout, path = saved(run_cli, ["inspect", "step", SENTENCE, "-m", tiny_model_dir, "--word", 1,
                                   "--save", tmp_path / "step.html"])
    data = read_page(path).data
    shown = step_json(run_cli, tiny_model_dir, "--word", "1")
    assert data["shown"] == shown["piece_index"] > 0
    assert len(data["steps"]) == len(shown["target_pieces"])             # a step per piece and the final </s>
    for index, own in enumerate(data["steps"]):
        assert {**data["shared"], **own} == step_json(run_cli, tiny_model_dir, "--piece", str(index))
    view = data["views"][data["shown"]]                                 # the numbers of the terminal view
    assert stdout == run_cli(["inspect", "step", SENTENCE, "-m", tiny_model_dir, "--word", 1]).stdout
    assert f"({view['where']})." in stdout and view["combine"] in stdout
    for summary in (view["decoder_state"], view["context"], view["combined"], view["attentional"]):
        assert f"\n    {summary}\n" in stdout
    score_rows = [row for row in body_rows(lines_of(stdout))][:len(view["sources"])]
    assert score_rows == [[str(s), source["piece"], source["score"], source["weight"], score_rows[s][4]]
                          for s, source in enumerate(view["sources"])]
    assert data["matrix"]["percents"][data["shown"]] == [round(100 * w) for w in shown["weights"]]


def test_save_needs_no_word_and_json_stays_one_step(run_cli, tiny_model_dir, tmp_path):
    stdout, path = saved(run_cli, ["inspect", "step", SENTENCE, "-m", tiny_model_dir, "--format", "json",
                                   "--save", tmp_path / "step.html"])
    data = read_page(path).data
    assert data["shown"] == 0 and stdout.count("\n") == 1
    assert json.loads(stdout) == {**data["shared"], **data["steps"][0]} == step_json(run_cli, tiny_model_dir, "--piece", "0")


def test_the_history_page_holds_every_validation(run_cli, watched_run, tmp_path):
    model, info = watched_run
    _, path = saved(run_cli, ["inspect", "history", model, "--save", tmp_path / "history.html"])
    page = read_page(path)
    printed = json.loads(run_cli(["inspect", "history", model, "--format", "json"]).stdout)
    data = page.data["history"]
    assert data["validations"] == printed["validations"] and data["watch"] == printed["watch"]
    assert [entry["step"] for entry in data["time_lapse"]] == [record["step"] for record in info["history"]]
    for entry in printed["time_lapse"]:                                 # the first, middle and last
        assert entry in data["time_lapse"]
    assert page.data["gold"] == [None, {"sure": [[0, 0], [1, 2], [2, 1], [3, 3], [4, 4]], "possible": []}]
    assert [title.split(" · ")[0] for title in page.data["titles"]] == ["update 3", "update 6", "update 9", "update 12"]
    assert [title.split(" · AER ")[1] for title in page.data["titles"]] == [
        f"{v['aer']['aer']:.3f}" for v in printed["validations"]]
    assert ("input", {"type": "range", "id": "validation", "min": "0", "step": "1", "aria-label": "validation"}) in page.tags


def test_the_history_page_tables_are_the_terminal_ones(run_cli, watched_run, tmp_path):
    model, _ = watched_run
    _, path = saved(run_cli, ["inspect", "history", model, "--save", tmp_path / "history.html"])
    maps = read_page(path).data["maps"][1]                                # update 6
    lines = lines_of(run_cli(["inspect", "history", model, "--at", 6]).stdout)
    titles = [n for n, line in enumerate(lines) if line.startswith("update 6 ")]
    assert len(titles) == len(maps) == 2
    assert maps[1]["rows"] == WATCHED_PAIR[1].split()
    for title, heat_map in zip(titles, maps):
        if not heat_map["rows"]:                                      # the model wrote nothing yet
            assert lines[title].endswith(": the translation is empty.")
            continue
        rows = body_rows(lines, title)
        assert [row[0] for row in rows] == heat_map["rows"]
        assert [[cell.rstrip("✓✗○") for cell in row[1:]] for row in rows] == [
            [str(p) if p else "·" for p in row] for row in heat_map["percents"]]
        assert all(len(row) == len(heat_map["columns"]) for row in heat_map["colours"])


def test_a_history_without_watched_sentences_gets_the_curves_and_a_line(run_cli, tmp_path):
    _, path = saved(run_cli, ["inspect", "history", "es-en", "--save", tmp_path / "history.html"])
    page = read_page(path)
    text = path.read_text(encoding="utf-8")
    assert "<svg" in text and f"<p>{NOTHING_WATCHED}</p>" in text and 'id="validation"' not in text
    assert page.data["history"]["time_lapse"] == [] and len(page.data["history"]["validations"]) == 25


@pytest.mark.parametrize("text", ["</script><script>alert(1)</script>", "<!--<script>", "a</b>"])
def test_embedded_data_cannot_end_its_script_element(text):
    page = Page(f'<!DOCTYPE html><script type="application/json" id="data">{embedded_json({"x": text})}</script>'
                "<script>0</script>")
    assert page.data == {"x": text} and len(page.scripts) == 2


def test_errors_are_one_line_before_any_work(run_cli, tmp_path):
    assert_one_line_error(run_cli(["inspect", "step", "hola", "-m", "no-such-model", "--save", tmp_path / "s.txt"]),
                          "s.txt", ".html")
    assert_one_line_error(run_cli(["inspect", "step", "Hola.", "--word", 9, "--save", tmp_path / "s.html"]),
                          "--word 9")
    assert_one_line_error(run_cli(["inspect", "step", "Hola.", "--save", tmp_path / "no" / "s.html"]),
                          "cannot write", stdout=None)
    assert not (tmp_path / "s.html").exists()


def test_the_command_writes_the_page(tiny_model_dir, tmp_path):
    """Through the installed entry point, in a process of its own."""
    path = tmp_path / "step.html"
    result = subprocess.run([sys.executable, "-m", "attncli", "inspect", "step", SENTENCE, "-m", str(tiny_model_dir),
                             "--piece", "2", "--save", str(path)], capture_output=True, text=True, env=SUBPROCESS_ENV)
    assert result.returncode == 0 and result.stderr == f"attncli: saved {path}\n", result.stderr
    assert read_page(path).data["shown"] == 2 and "Step 2: after reading" in result.stdout
