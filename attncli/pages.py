"""One-file HTML pages to learn from: `inspect step --save FILE.html` and `inspect history --save
FILE.html`.

Each page is self-contained: its CSS and JavaScript inline, its data as JSON in a
`<script type="application/json">` element, no web address anywhere, so it opens from file://
without a network. The step page holds every step of one translation (`explain_steps`): click a
piece of the translation to see its five steps, with the terminal view's numbers
(`step_view.attention_step_view`) beside the full vectors of `inspect step --format json`. The
history page holds the training curves (`plots.curves_svg`) and, for the sentences watched while
training, their word attention as a heat map with a slider through the validations
(`history_view.history_json` of every validation).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .config import check_save_suffix
from .errors import OptionError

if TYPE_CHECKING:
    from .alignment import PharaohLinks
    from .attention_steps import StepExplanation
    from .history import TrainingHistory

PAGE_SUFFIX = ".html"
# `inspect step --format json` keys that are the same at every step: the page holds them once
SHARED_STEP_KEYS = ("source_pieces", "target_pieces", "target_words", "target_word_of_piece", "target_given", "mask",
                    "encoder_states", "combine_bias", "note")


def check_page_path(path: Path) -> None:
    """Refuse a --save file name that is not .html (before any work is done)."""
    check_save_suffix(path, (PAGE_SUFFIX,), " (a page to open in a browser)")


# -- inspect step --save: every step of one translation -------------------------------------------

def step_page_data(steps: list[StepExplanation], shown: int, model: str, sentence: str) -> dict[str, Any]:
    """The step page's data: the `inspect step --format json` of every step (the keys all steps
    share once, under "shared"), each step's terminal numbers ("views"), the attention of all
    steps as a heat map ("matrix", a row per step), and the step shown first."""
    from .step_view import attention_step_json, attention_step_view

    full = [attention_step_json(step) for step in steps]
    return {"model": model, "sentence": sentence, "shown": shown,
            "shared": {key: full[0][key] for key in SHARED_STEP_KEYS},
            "steps": [{key: value for key, value in data.items() if key not in SHARED_STEP_KEYS} for data in full],
            "views": [attention_step_view(step) for step in steps],
            "matrix": heat_map(steps[0].target_pieces, steps[0].source_pieces, [step.weights for step in steps])}


def step_page(steps: list[StepExplanation], shown: int, model: str, sentence: str) -> str:
    """The page of `inspect step --save`: the sentence, its translation as buttons, the step shown."""
    whose = "the translation given with --target" if steps[0].given else "its own translation (beam search)"
    header = (f"<header>\n<h1>How attention translates one sentence</h1>\n<p class=\"lead\">The model "
              f"<b>{escape(model)}</b> reads <q>{escape(sentence)}</q> and writes {whose} one piece at a time. "
              "Each piece comes out of one decoder step of Luong attention, in five steps. <b>Click a piece of "
              "the translation</b> to see its step (or use the ← and → keys).</p>\n</header>\n")
    return _page(f"attncli inspect step: {sentence}", header + STEP_BODY,
                 step_page_data(steps, shown, model, sentence), STEP_JS)


def save_step_page(steps: list[StepExplanation], shown: int, model: str, sentence: str, path: Path) -> None:
    check_page_path(path)
    _write(path, step_page(steps, shown, model, sentence))


# -- inspect history --save: the curves and the watched sentences' time-lapse ----------------------

def history_page_data(history: TrainingHistory) -> dict[str, Any]:
    """The history page's data: `inspect history --format json` with every validation in the
    time-lapse, a title per validation (with the watched links' AER where there is gold), each
    watched sentence's gold links, and its attention at each validation as a heat map ("maps")."""
    from .history_view import NOTHING_WATCHED, history_json, history_summary

    validations = range(len(history.records)) if history.watched else range(0)
    gold = history.gold()
    return {"summary": history_summary(history).plain,
            "history": history_json(history, list(validations)),
            "titles": [_lapse_title(history, index) for index in validations],
            "gold": [_gold_json(gold.get(sentence)) for sentence in range(len(history.watched))],
            "maps": [[_word_heat_map(history, index, sentence) for sentence in range(len(history.watched))]
                     for index in validations],
            "nothing_watched": None if history.watched else NOTHING_WATCHED}


def _word_heat_map(history: TrainingHistory, index: int, sentence: int) -> dict[str, Any]:
    alignment = history.alignment(index, sentence)
    return heat_map(alignment.tgt_words, alignment.src_words + ["</s>"], alignment.word_weights)


def _lapse_title(history: TrainingHistory, index: int) -> str:
    from .history_view import validation_title

    score = history.aer(index)
    return validation_title(history, index) + ("" if score is None else f" · AER {score.aer:.3f}")


def _gold_json(links: Optional[PharaohLinks]) -> Optional[dict[str, list[list[int]]]]:
    """Sure and possible-only gold links as (source word, target word) pairs; None: no gold."""
    if links is None:
        return None
    sure, possible = links
    return {"sure": sorted(map(list, sure)), "possible": sorted(map(list, possible - sure))}


def history_page(history: TrainingHistory, curves: str) -> str:
    """The page of `inspect history --save`: the summary, the curves (an <svg>), the time-lapse."""
    data = history_page_data(history)
    name = escape(history.folder.name)
    body = (f"<header>\n<h1>How {name} trained</h1>\n<p class=\"lead\">{escape(data['summary'])}</p>\n</header>\n"
            f"<section id=\"curves\">\n<h2>Training curves</h2>\n{curves}\n</section>\n")
    lapse = LAPSE_BODY if history.watched else f"<p>{escape(data['nothing_watched'])}</p>\n"
    return _page(f"attncli inspect history: {history.folder.name}", body + lapse + HISTORY_FOOTER, data,
                 HISTORY_JS if history.watched else "")


def save_history_page(history: TrainingHistory, path: Path, minutes: bool = False) -> None:
    from .plots import curves_svg

    check_page_path(path)
    _write(path, history_page(history, curves_svg(history, path, minutes)))


# -- both pages --------------------------------------------------------------------------------------

def heat_map(rows: list[str], columns: list[str], weights) -> dict[str, Any]:
    """Attention weights (rows of float32) as the page draws them, with the numbers and colours of
    the terminal's tables: each cell in whole percent (float32 times 100, rounded half to even), its
    background and text colour (heat.py), and the strongest column of each row."""
    from .heat import heat_colour, text_colour

    percent = np.asarray(weights, dtype=np.float32).reshape(len(rows), len(columns)) * 100.0
    backgrounds = [[heat_colour(float(value) / 100) for value in row] for row in percent]
    return {"rows": rows, "columns": columns, "percents": [[round(float(value)) for value in row] for row in percent],
            "colours": [[[background, text_colour(background)] for background in row] for row in backgrounds],
            "strongest": [int(row.argmax()) for row in percent]}


def embedded_json(data: dict[str, Any]) -> str:
    """JSON that can sit inside a <script> element: every "<" escaped, so no "</script>" or
    "<!--" in the data can end or bend the element."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _page(title: str, body: str, data: dict[str, Any], script: str) -> str:
    from . import version

    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"attncli {escape(version())}\">\n<title>{escape(title)}</title>\n"
            f"<style>\n{PAGE_CSS}</style>\n</head>\n<body>\n{body}"
            f"<script type=\"application/json\" id=\"data\">{embedded_json(data)}</script>\n"
            f"<script>\n{COMMON_JS}{script}</script>\n</body>\n</html>\n")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"--save {path}: cannot write ({exc.strerror or exc}).") from None


PAGE_CSS = """\
:root { --ink: #1d2330; --muted: #5b6472; --line: #d8dde5; --accent: #2e7d32; --mark: #b35c00; }
body { font: 16px/1.45 system-ui, "Segoe UI", sans-serif; color: var(--ink); max-width: 76rem;
       margin: 0 auto; padding: .5rem 1.5rem 2rem; }
h1 { font-size: 1.5rem; margin: .6rem 0 .3rem; }
h2 { font-size: 1.2rem; margin: 1.2rem 0 .3rem; }
h3 { font-size: 1rem; margin: .9rem 0 .1rem; }
.lead, .explain, footer { color: var(--muted); }
.explain { margin: .1rem 0 .3rem; font-size: .9rem; }
code, .numbers, .piece, td, table.heat th { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
.numbers { margin: .2rem 0; font-size: .88rem; overflow-wrap: anywhere; }
.pieces { display: flex; flex-wrap: wrap; align-items: center; gap: .3rem; margin: .35rem 0; }
.label { color: var(--muted); min-width: 8.5rem; }
.piece { border: 1px solid var(--line); border-radius: 4px; padding: .05rem .4rem; background: #fff;
         font-size: .95rem; color: var(--ink); }
button.piece { cursor: pointer; }
button.piece:hover { border-color: var(--accent); }
button.piece[aria-pressed="true"] { background: var(--mark); border-color: var(--mark); color: #fff; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(27rem, 1fr)); gap: 0 2.5rem; }
table { border-collapse: collapse; font-size: .88rem; margin: .3rem 0; }
th, td { padding: .1rem .5rem; border-bottom: 1px solid var(--line); text-align: right; white-space: pre; }
th { font-weight: 600; }
.text { text-align: left; }
.bar { display: inline-block; height: .75em; background: var(--accent); vertical-align: baseline; }
td.bars { width: 9rem; text-align: left; }
.strongest { color: var(--accent); font-weight: 700; }
.weak { color: #98a1ab; }
.mark { color: var(--mark); font-weight: 700; margin-left: .4rem; }
.chosen { color: var(--mark); font-weight: 700; }
table.heat td, table.heat th { min-width: 2.4rem; text-align: center; }
table.heat th.text { text-align: left; }
table.heat tr.clickable { cursor: pointer; }
table.heat tr.current { outline: 2px solid var(--mark); outline-offset: -1px; }
table.heat td.strongest { font-weight: 700; text-decoration: underline; }
table.heat td.sure { box-shadow: inset 0 0 0 2px var(--mark); }
table.heat td.possible { outline: 2px dashed var(--mark); outline-offset: -3px; }
.controls { display: flex; flex-wrap: wrap; gap: .8rem; align-items: center; margin: .5rem 0; }
.controls input { width: 22rem; max-width: 100%; }
.controls output { font-weight: 600; }
.watched { display: inline-block; vertical-align: top; margin: 0 2rem .8rem 0; }
svg { max-width: 100%; height: auto; }
footer { margin-top: 1.5rem; font-size: .85rem; }
"""

COMMON_JS = """\
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);

/* An element with properties (className, onclick, ...) and children (elements or text). */
function el(tag, properties, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

/* A node in a heat map's colours ([background, text]). */
function shade(node, [background, text]) {
  Object.assign(node.style, {background, color: text});
  return node;
}

/* A heat map (pages.heat_map): a row per target piece or word, a column per source piece or word,
   cells in %, the strongest of each row underlined; marks(i, j) gives extra class names of a cell. */
function heatTable(map, marks, onRow) {
  const head = el("tr", {}, el("th", {className: "text"}, "target \\\\ source"),
                  ...map.columns.map(name => el("th", {}, name)));
  const body = map.rows.map((name, j) => {
    const cells = map.percents[j].map((p, i) => shade(el("td", {className: marks(i, j)}, p === 0 ? "·" : String(p)),
                                                      map.colours[j][i]));
    cells[map.strongest[j]].classList.add("strongest");
    const row = el("tr", {}, el("th", {className: "text"}, name), ...cells);
    if (onRow) {
      row.classList.add("clickable");
      row.onclick = () => onRow(j);
    }
    return row;
  });
  return el("table", {className: "heat"}, el("thead", {}, head), el("tbody", {}, ...body));
}
"""

STEP_BODY = """\
<section class="sentence">
<div class="pieces"><span class="label">source pieces</span><span class="pieces" id="source"></span></div>
<div class="pieces"><span class="label">translation</span><span class="pieces" id="target"></span></div>
</section>
<main id="step">
<h2>Step <span data-field="index"></span>: after reading <code data-field="previous"></code>, the decoder
predicts <code class="chosen" data-field="chosen"></code></h2>
<p class="explain">(<span data-field="where"></span>)</p>
<div class="grid">
<section>
<h3>h<sub>t</sub>, the decoder state (top layer)</h3>
<p class="explain">What the decoder knows at this step: the source, summed up by the encoder, and the
translation read so far.</p>
<p class="numbers" data-field="decoder_state"></p>
<h3>(1) score(s) = h<sub>t</sub> · h̄<sub>s</sub> &nbsp; (2) a<sub>t</sub>(s) = softmax(score)(s)</h3>
<p class="explain">(1) How well h<sub>t</sub> matches the encoder state h̄<sub>s</sub> of each source piece
s: a dot product. (2) The softmax turns the scores into weights that add up to 1: where the decoder
looks. One sentence has no padding, so nothing is masked.</p>
<table class="scores"><thead><tr><th>s</th><th class="text">source piece</th><th>(1) score</th>
<th>(2) a<sub>t</sub></th><th></th></tr></thead><tbody data-field="sources"></tbody></table>
</section>
<section>
<h3>(3) c<sub>t</sub> = Σ<sub>s</sub> a<sub>t</sub>(s) h̄<sub>s</sub>, the context vector</h3>
<p class="explain">The encoder states mixed in the proportions of a<sub>t</sub>: what the decoder reads
from the source at this step.</p>
<p class="numbers" data-field="context"></p>
<p class="numbers">from: <span data-field="context_from"></span>
<span class="explain">(a<sub>t</sub>(s) h̄<sub>s</sub>·c<sub>t</sub> / c<sub>t</sub>·c<sub>t</sub>)</span></p>
<h3>(4) [c<sub>t</sub>; h<sub>t</sub>], c<sub>t</sub> then h<sub>t</sub></h3>
<p class="explain">The context and the decoder state side by side, one vector.</p>
<p class="numbers" data-field="combined"></p>
<h3>(5) <span data-field="combine"></span></h3>
<p class="explain">A learned matrix W<sub>c</sub> mixes the two into the attentional state h̃<sub>t</sub>,
from which the output layer W<sub>o</sub> gives every piece of the vocabulary a probability.</p>
<p class="numbers" data-field="attentional"></p>
<div data-field="lexical-part" hidden>
<h3>Lexical model: l<sub>t</sub> = (tanh(W<sub>l</sub> f<sub>t</sub>) + f<sub>t</sub>) / 2,
f<sub>t</sub> = tanh(Σ<sub>s</sub> a<sub>t</sub>(s) e<sub>s</sub>)</h3>
<p class="explain">The same weights a<sub>t</sub> average the source embeddings e<sub>s</sub>, which reach
the output through W<sub>lex</sub> past the recurrent states (Nguyen &amp; Chiang 2018).</p>
<p class="numbers" data-field="lexical"></p>
</div>
<h3>Next piece: <span data-field="prediction"></span> over
<span data-field="vocabulary"></span> pieces</h3>
<table class="next"><thead><tr><th>rank</th><th class="text">piece</th><th>p</th><th></th></tr></thead>
<tbody data-field="next"></tbody></table>
</section>
</div>
</main>
<section id="all-steps">
<h2>All the steps at once</h2>
<p class="explain">Each row is one step's attention a<sub>t</sub> in % (· ≈ 0; dark: little, yellow: much),
as <code>attncli inspect alignment --subwords</code> prints it. Click a row to see its step.</p>
<div id="matrix"></div>
</section>
<footer>Made by attncli inspect step --save. The numbers are the model's own float32 arithmetic;
<code>attncli inspect step SENTENCE --piece N</code> prints step N in a terminal, and
<code>--format json</code> every vector in full (this page holds them too, in its data).</footer>
"""

STEP_JS = """\
const field = name => document.querySelector(`[data-field="${name}"]`);
const targetButtons = data.shared.target_pieces.map((piece, index) =>
  el("button", {type: "button", className: "piece", onclick: () => showStep(index)}, piece));
const sourcePieces = data.shared.source_pieces.map(piece => el("span", {className: "piece"}, piece));
const matrix = heatTable(data.matrix, () => "", showStep);
document.getElementById("target").replaceChildren(...targetButtons);
document.getElementById("source").replaceChildren(...sourcePieces);
document.getElementById("matrix").replaceChildren(matrix);
let shown = data.shown;

/* "W_c [c_t; h_t]" with c, t written as subscripts. */
function withSubscripts(text) {
  return text.split(/_([a-z]+)/).map((part, i) => i % 2 ? el("sub", {}, part) : part);
}

function bar(fraction) {
  return el("span", {className: "bar", style: `width: ${(100 * fraction).toFixed(2)}%`});
}

function sourceRow(source, s) {
  return el("tr", {}, el("td", {}, String(s)), el("td", {className: "text"}, source.piece),
            el("td", {}, source.score), el("td", {className: source.look}, source.weight),
            el("td", {className: "bars"}, bar(source.fraction)));
}

function nextRow(row, mark) {
  if (row === null) return el("tr", {}, el("td", {}, "…"), el("td"), el("td"), el("td"));
  const bars = el("td", {className: "bars"}, bar(row.fraction));
  if (row.chosen) bars.append(el("span", {className: "mark"}, mark));
  return el("tr", {}, el("td", {}, String(row.rank)), el("td", {className: row.chosen ? "text chosen" : "text"}, row.piece),
            el("td", {}, row.p), bars);
}

function showStep(index) {
  shown = index;
  const step = data.steps[index], view = data.views[index];
  const texts = {index: String(index), previous: step.previous_piece, chosen: step.chosen,
                 context_from: view.context_from.map(source => `${source.piece} ${source.share}`).join(", "),
                 vocabulary: String(view.vocabulary)};
  for (const name of ["where", "decoder_state", "context", "combined", "attentional"]) texts[name] = view[name];
  for (const [name, text] of Object.entries(texts)) field(name).textContent = text;
  field("combine").replaceChildren(...withSubscripts(view.combine));
  field("prediction").replaceChildren(...withSubscripts(view.prediction));
  field("lexical").textContent = view.lexical ?? "";
  field("lexical-part").hidden = view.lexical === null;
  field("sources").replaceChildren(...view.sources.map(sourceRow));
  field("next").replaceChildren(...view.next.map(row => nextRow(row, view.mark)));
  targetButtons.forEach((button, i) => button.setAttribute("aria-pressed", String(i === index)));
  sourcePieces.forEach((piece, s) => { shade(piece, data.matrix.colours[index][s]).title = `a_t = ${view.sources[s].weight}`; });
  matrix.querySelectorAll("tbody tr").forEach((row, j) => row.classList.toggle("current", j === index));
}

document.addEventListener("keydown", event => {
  const move = {ArrowLeft: -1, ArrowRight: 1}[event.key];
  if (move && shown + move >= 0 && shown + move < data.steps.length) showStep(shown + move);
});
showStep(shown);
"""

LAPSE_BODY = """\
<section id="lapse">
<h2>Time-lapse: the attention of the watched sentences</h2>
<p class="explain">At every validation, training recorded where the model, as it was then, looks when it
writes each word of these sentences (train --watch). Move the slider (or press play) to see the attention
form: a row per target word, a column per source word and &lt;/s&gt;, cells in % (· ≈ 0), shaded as in
the terminal's tables (dark: little, yellow: much). <u><b>Underlined</b></u>: the strongest in its row. With
gold links: a frame marks a sure gold link, a dashed frame a possible one.</p>
<div class="controls"><button type="button" id="play">▶ play</button>
<input type="range" id="validation" min="0" step="1" aria-label="validation">
<output id="shown"></output></div>
<div id="sentences"></div>
</section>
"""

HISTORY_FOOTER = """\
<footer>Made by attncli inspect history --save. The numbers of every validation are in this page's data, as
<code>attncli inspect history MODEL --format json</code> gives them.</footer>
"""

HISTORY_JS = """\
const lapse = data.history.time_lapse, watch = data.history.watch;
const slider = document.getElementById("validation"), play = document.getElementById("play");
let timer = null;
slider.max = String(lapse.length - 1);

/* A cell's frame: a sure gold link (source word i, target word j), or a possible one. */
function goldFrames(gold) {
  const has = (pairs, i, j) => pairs.some(([s, t]) => s === i && t === j);
  return (i, j) => gold === null ? "" : has(gold.sure, i, j) ? "sure" : has(gold.possible, i, j) ? "possible" : "";
}

function watchedBlock(sentence, n, map) {
  const pair = watch[n];
  const head = el("h3", {}, `Watched sentence ${n + 1} of ${watch.length}: ${pair.source}`);
  const target = el("p", {className: "explain"}, pair.target === null
    ? "target: the model's own greedy translation at this validation" : `target: ${pair.target}`);
  if (sentence.target_words.length === 0) return el("div", {className: "watched"}, head, target,
                                                    el("p", {}, "The translation is empty."));
  return el("div", {className: "watched"}, head, target,
            heatTable(map, goldFrames(data.gold[n]), null));
}

function showValidation(index) {
  slider.value = String(index);
  document.getElementById("shown").textContent = `validation ${index + 1} of ${lapse.length}: ${data.titles[index]}`;
  document.getElementById("sentences").replaceChildren(
    ...lapse[index].sentences.map((sentence, n) => watchedBlock(sentence, n, data.maps[index][n])));
}

function stop() {
  clearInterval(timer);
  timer = null;
  play.textContent = "▶ play";
}

play.onclick = () => {
  if (timer !== null) return stop();
  if (Number(slider.value) === lapse.length - 1) showValidation(0);
  play.textContent = "❚❚ pause";
  timer = setInterval(() => Number(slider.value) < lapse.length - 1 ? showValidation(Number(slider.value) + 1) : stop(), 900);
};
slider.addEventListener("input", () => showValidation(Number(slider.value)));
showValidation(lapse.length - 1);
"""
