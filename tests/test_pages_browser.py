"""The pages of `inspect step --save` and `inspect history --save` in a real browser: headless
Chromium (tests/headless_chromium.py) loads each from file://, a real mouse click on a piece of
the translation or on the slider changes what the page shows, and a screenshot is taken.

Skipped where no Chromium is installed; on Debian, `apt-get install chromium`, then
`.venv/bin/python -m pytest tests/test_pages_browser.py`."""

from __future__ import annotations

import json

import pytest
from headless_chromium import Browser, find_chromium
from test_history import body_rows, lines_of

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian: apt-get install chromium)")
SENTENCE = "Tengo un perro negro."
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SHOWN_STEP = """(() => ({
    chosen: document.querySelector('[data-field="chosen"]').textContent,
    pressed: [...document.querySelectorAll('#target button[aria-pressed="true"]')].map(button => button.textContent),
    scores: [...document.querySelectorAll('[data-field="sources"] tr')].map(row =>
        [...row.cells].slice(0, 4).map(cell => cell.textContent)),
    next: document.querySelector('[data-field="next"] .chosen').textContent,
    current: [...document.querySelectorAll("#matrix tbody tr")].findIndex(row => row.classList.contains("current")),
    lexical: !document.querySelector('[data-field="lexical-part"]').hidden,
    prediction: document.querySelector('[data-field="prediction"]').textContent,
}))()"""

SHOWN_VALIDATION = """(() => ({
    title: document.getElementById("shown").textContent,
    value: document.getElementById("validation").value,
    rows: [...document.querySelectorAll("#sentences table.heat")].map(table =>
        [...table.tBodies[0].rows].map(row => [...row.cells].map(cell => cell.textContent))),
}))()"""


@pytest.fixture(scope="module")
def browser():
    with Browser(CHROMIUM, width=1100, height=1000) as browser:
        yield browser


def saved_page(run_cli, args: list, path) -> None:
    result = run_cli([*args, "--save", path])
    assert result.exit_code == 0, result.stderr


def test_clicking_a_piece_of_the_translation_shows_its_step(run_cli, browser, tmp_path):
    page = tmp_path / "step.html"
    saved_page(run_cli, ["inspect", "step", SENTENCE], page)           # the shipped es-en; opens at piece 0
    browser.open(page)
    before = browser.evaluate(SHOWN_STEP)
    assert before["chosen"] == before["next"] == before["pressed"][0] == "▁I" and before["current"] == 0
    assert not before["lexical"] and before["prediction"] == "p = softmax(Wo h̃t + bo)"   # no lexical model

    browser.click("#target button:nth-child(4)")                        # ▁black
    after = browser.evaluate(SHOWN_STEP)
    assert after["chosen"] == after["next"] == "▁black" and after["pressed"] == ["▁black"] and after["current"] == 3
    terminal = lines_of(run_cli(["inspect", "step", SENTENCE, "--piece", 3]).stdout)
    assert after["scores"] == [row[:4] for row in body_rows(terminal)]   # s, piece, (1) score, (2) a_t as printed
    browser.screenshot(tmp_path / "step.png")
    assert (tmp_path / "step.png").read_bytes().startswith(PNG_SIGNATURE)


def test_the_slider_goes_through_the_validations(run_cli, browser, watched_run, tmp_path):
    model, info = watched_run
    page = tmp_path / "history.html"
    saved_page(run_cli, ["inspect", "history", model], page)
    browser.open(page)
    last = browser.evaluate(SHOWN_VALIDATION)
    assert last["value"] == "3" and last["title"].startswith("validation 4 of 4: update 12 · ")

    browser.click("#validation", at=0.01)                                # the slider's left end
    first = browser.evaluate(SHOWN_VALIDATION)
    assert first["value"] == "0" and first["title"].startswith("validation 1 of 4: update 3 · ")
    data = json.loads(browser.evaluate('document.getElementById("data").textContent'))
    tables = [heat_map for heat_map in data["maps"][0] if heat_map["rows"]]
    assert first["rows"] == [[[name, *(str(p) if p else "·" for p in percents)]
                              for name, percents in zip(heat_map["rows"], heat_map["percents"])]
                             for heat_map in tables]
    assert first["rows"] != last["rows"]
    browser.screenshot(tmp_path / "history.png", clip="#lapse")
    assert (tmp_path / "history.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_lexical_model_shows_its_part(run_cli, browser, tiny_model_dir, tmp_path):
    """The tiny model has the lexical model (the recipe's choice): its l_t and W_lex are shown."""
    page = tmp_path / "step.html"
    saved_page(run_cli, ["inspect", "step", SENTENCE, "-m", tiny_model_dir], page)
    browser.open(page)
    shown = browser.evaluate(SHOWN_STEP)
    assert shown["lexical"] and shown["prediction"] == "p = softmax(Wo h̃t + bo + Wlex lt)"
