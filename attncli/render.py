"""Everything `inspect` shows: alignment tables, their pictures, JSON and Pharaoh lines, AER,
one attention step with its numbers (`inspect step`), and a training history's validations and
watched sentences (`inspect history`; its curves are plots.py's).

Text formats are returned as strings; tables are rich renderables, printed by `print_alignment_table`
on the console the caller gives (the CLI's stdout) or recorded into an SVG/HTML picture. Tokens
are wrapped in `Text` so that a token such as `[b]` is shown as it is, not parsed as markup.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Optional

import numpy as np
from rich.cells import cell_len
from rich.console import CONSOLE_SVG_FORMAT, Console
from rich.padding import Padding
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .alignment import (Alignment, AlignmentScore, PharaohLinks, TableWords, format_pharaoh, score_alignments,
                        table_weights, table_words)
from .errors import OptionError
from .heat import heat_colour, text_colour
from .history import RECORD_NUMBERS
from .watch import DECIMALS

if TYPE_CHECKING:
    from .attention_steps import StepExplanation
    from .history import TrainingHistory

WEAK_PERCENT = 10   # weights below this are dimmed (inspect step)

MARK_STYLES = {"✓": "bold #ffffff on #1b7a33", "✗": "bold #ffffff on #c62828", "○": "bold #000000 on #ffc107"}
CORNER = "target \\ source"
LEGEND_PERCENTS = (0, 25, 50, 75, 100)


def heat_style(fraction: float) -> Style:
    """A cell's look: its weight's colour (heat.py) behind black or white text, whichever reads better."""
    background = heat_colour(fraction)
    return Style(color=text_colour(background), bgcolor=background)


@dataclass(frozen=True)
class AlignmentGrid:
    """What an alignment table shows, before it is cut to a width."""

    columns: list[str]                      # source words (or pieces), then </s>
    rows: list[str]                         # target words (or pieces, then </s>)
    percent: np.ndarray                     # (rows, columns) attention in %, each row summing to 100
    marks: dict[tuple[int, int], str]       # (row, column): ✓ ✗ ○
    unit: str                               # "words" or "pieces", for the headings of column blocks


def alignment_grid(alignment: Alignment, subwords: bool = False, links: Collection[tuple[int, int]] | None = None,
                   gold: PharaohLinks | None = None) -> AlignmentGrid:
    """The pieces as they are (--subwords), or the words with their punctuation pieces apart
    (alignment.table_words) and, with `gold` (sure, possible), the marks of the links."""
    if subwords:
        return AlignmentGrid(alignment.src_pieces + ["</s>"], alignment.tgt_pieces + ["</s>"],
                             alignment.piece_weights * 100.0, {}, "pieces")
    src = table_words(alignment.src_words, alignment.src_pieces, alignment.src_word_of_piece)
    tgt = table_words(alignment.tgt_words, alignment.tgt_pieces, alignment.tgt_word_of_piece)
    marks = _gold_marks(list(links) if links is not None else alignment.links(), gold, src, tgt) if gold else {}
    return AlignmentGrid(_marked_words(src.texts, alignment.src_pieces, src.shown_of_piece) + ["</s>"],
                         _marked_words(tgt.texts, alignment.tgt_pieces, tgt.shown_of_piece),
                         table_weights(alignment, src, tgt) * 100.0, marks, "words")


def _gold_marks(links: list[tuple[int, int]], gold: PharaohLinks, src: TableWords,
                tgt: TableWords) -> dict[tuple[int, int], str]:
    """✓ on each predicted link (source word i, target word j) in the gold, ✗ on one not in it, ○ on
    each sure gold link missed; each on the cell of the two words themselves, punctuation aside."""
    sure, possible = gold
    marks = {link: "✓" if link in sure | possible else "✗" for link in links}
    marks.update({link: "○" for link in sure - set(links)})
    return {(tgt.shown_of_word[j], src.shown_of_word[i]): mark for (i, j), mark in marks.items()}


def _rounded(percent: float) -> str:
    """A weight as the table writes it: rounded %, "·" for what rounds to 0."""
    return str(round(percent)) if round(percent) else "·"


def _cell(percent: float, strongest: bool, mark: str) -> Padding:
    """One weight in %, shaded by its value, a space either side; bold and underlined if the strongest
    of its row."""
    number = Text(justify="right", no_wrap=True)        # its justifying spaces take the shade, not the underline
    number.append(_rounded(percent), style="bold underline" if strongest else "")
    if mark:
        number.append(mark, style=MARK_STYLES[mark])
    return Padding(number, (0, 1), style=heat_style(percent / 100))


def _numbers_width(grid: AlignmentGrid, column: int) -> int:
    """The width of a column's widest cell: its number and mark, with a space either side."""
    return max((len(f" {_rounded(grid.percent[r, column])}{grid.marks.get((r, column), '')} ")
                for r in range(len(grid.rows))), default=0)


def _name(text: str, justify: str = "left") -> Padding:
    """A row or column name with a space either side; folded over lines, never cut, if too long."""
    return Padding(Text(text, justify=justify, overflow="fold"), (0, 1))


def _column_widths(grid: AlignmentGrid) -> list[int]:
    """The natural width of each column: its name or its widest cell, with a space either side."""
    return [max(cell_len(f" {name} "), _numbers_width(grid, c)) for c, name in enumerate(grid.columns)]


def _label_width(grid: AlignmentGrid) -> int:
    return max(cell_len(f" {name} ") for name in [CORNER, *grid.rows])


def table_width(grid: AlignmentGrid, columns: range) -> int:
    """The width of the table of these columns: borders, the row names, the columns."""
    return 2 + _label_width(grid) + sum(width + 1 for width in _column_widths(grid)[columns.start: columns.stop])


def column_blocks(grid: AlignmentGrid, width: int) -> list[range]:
    """Consecutive ranges of columns that each fit `width` beside the row names (at least one column
    each): as few blocks as fit, of about equal numbers of columns (no block of </s> alone)."""
    widths, label = _column_widths(grid), _label_width(grid)
    fewest = len(_fitting_blocks(widths, width - 2 - label, len(widths)))
    return _fitting_blocks(widths, width - 2 - label, math.ceil(len(widths) / fewest))


def _fitting_blocks(widths: list[int], room: int, most: int) -> list[range]:
    """Columns taken left to right into a block while their widths (each + its border) fit `room`
    and they number at most `most`."""
    blocks, start, used = [], 0, 0
    for column, width in enumerate(widths):
        if column > start and (column - start == most or used + width + 1 > room):
            blocks.append(range(start, column))
            start, used = column, 0
        used += width + 1
    return blocks + [range(start, len(widths))]


def _block_heading(grid: AlignmentGrid, block: range) -> str:
    """Which columns a block shows: "source words 10–18 of 21", "source words 19–21 of 21 and </s>"."""
    count = len(grid.columns) - 1                                  # </s> aside
    first, last = block.start + 1, min(block.stop, count)          # 1-based
    parts = []
    if first < last:
        parts.append(f"source {grid.unit} {first}–{last} of {count}")
    elif first == last:
        parts.append(f"source {grid.unit[:-1]} {first} of {count}")
    if block.stop > count:
        parts.append("</s>")
    return " and ".join(parts)


def grid_table(grid: AlignmentGrid, columns: range) -> Table:
    """The table of some columns: a row per target word (or piece) named in the first column."""
    table = Table(padding=0)
    table.add_column(_name(CORNER), style="bold")
    for c in columns:
        table.add_column(_name(grid.columns[c], "right"), min_width=_numbers_width(grid, c))   # names fold, numbers not
    for r, name in enumerate(grid.rows):
        row = grid.percent[r]
        strongest = int(row.argmax()) if row.size else -1
        table.add_row(_name(name), *(_cell(float(row[c]), c == strongest, grid.marks.get((r, c), "")) for c in columns))
    return table


def alignment_table(alignment: Alignment, subwords: bool = False, links: Collection[tuple[int, int]] | None = None,
                    gold: PharaohLinks | None = None) -> Table:
    """The whole table of one alignment (all columns): a heat map of the attention in %."""
    grid = alignment_grid(alignment, subwords, links, gold)
    return grid_table(grid, range(len(grid.columns)))


def _marked_words(words: list[str], pieces: list[str], word_of_piece: list[int]) -> list[str]:
    """The words, each text the model read as <unk> shown as its piece is named: "perro<unk:🐕>"."""
    marked = list(words)
    for piece, index in zip(pieces, word_of_piece):
        if piece.startswith("<unk:") and piece.endswith(">") and index < len(marked):
            text = piece[len("<unk:"):-1]
            word = marked[index]
            start = word.rfind(">") + 1             # after the marks made so far in this word
            at = word.find(text, start)
            marked[index] = word[:at] + piece + word[at + len(text):] if at >= 0 else word + piece
    return marked


def legend(with_gold: bool) -> Text:
    """The key under a table, in lines of at most 70 characters: numbers, shades, marks."""
    text = Text().append("Cells: attention in % (each row sums to 100); · ≈ 0.\nShade:", style="dim")
    for percent in LEGEND_PERCENTS:
        text.append(" ").append(f" {percent} ", style=heat_style(percent / 100))
    text.append("  underlined: ", style="dim").append("the strongest", style="bold underline")
    text.append(" in its row.", style="dim")
    if with_gold:
        text.append("\n")
        for mark, meaning in (("✓", " link in gold, "), ("✗", " link not in gold, "),
                              ("○", " sure gold link missed.")):
            text.append(mark, style=MARK_STYLES[mark]).append(meaning, style="dim")
    return text


TEXT_FORMATS = ("pharaoh", "json")     # one line per alignment; the other format is the table
PICTURE_SUFFIXES = (".svg", ".html")


def alignment_text(alignment: Alignment, output_format: str, links: Collection[tuple[int, int]]) -> str:
    """One alignment as one line: "pharaoh" (i-j links) or "json" (tokens, words, matrices, links)."""
    if output_format == "pharaoh":
        return format_pharaoh(links)
    if output_format == "json":
        return json.dumps(alignment_json(alignment, links), ensure_ascii=False)
    raise ValueError(f"no text format {output_format!r}; expected one of {', '.join(TEXT_FORMATS)}")


def alignment_json(alignment: Alignment, links: Collection[tuple[int, int]]) -> dict[str, Any]:
    return {
        "src_words": alignment.src_words, "tgt_words": alignment.tgt_words,
        "src_pieces": alignment.src_pieces, "tgt_pieces": alignment.tgt_pieces,
        "src_word_of_piece": alignment.src_word_of_piece, "tgt_word_of_piece": alignment.tgt_word_of_piece,
        "word_weights": [[round(float(w), 6) for w in row] for row in alignment.word_weights],
        "piece_weights": [[round(float(w), 6) for w in row] for row in alignment.piece_weights],
        "links": [list(link) for link in links],
        "log_probability": alignment.score,
        "note": "word_weights: rows = target words, columns = source words + </s>; "
                "piece_weights: rows = target pieces + </s>, columns = source pieces + </s>",
    }


def print_alignment_table(console: Console, alignment: Alignment, subwords: bool,
                          links: Collection[tuple[int, int]], gold: Optional[PharaohLinks] = None) -> None:
    """The view of one alignment: the translation, the table, the legend. On a terminal the table
    is cut into blocks of columns that fit its width, each under a line naming its columns; anywhere
    else (a pipe, a file, a picture) the console is widened to what is printed, so nothing is cut."""
    grid = alignment_grid(alignment, subwords, links, gold)
    translation, key = Text(" ".join(alignment.tgt_words)), legend(gold is not None)
    if not console.is_terminal:              # the console is the caller's, made for this view
        lines = [translation.plain, *key.plain.split("\n")]
        console.width = max(table_width(grid, range(len(grid.columns))), *(cell_len(line) for line in lines))
    blocks = column_blocks(grid, console.width)
    console.print(translation)
    for block in blocks:
        if len(blocks) > 1:
            console.print(Text(_block_heading(grid, block), style="dim"))
        console.print(grid_table(grid, block))
    console.print(key)


def check_picture_path(path: Path) -> None:
    """Refuse a --save file name that is not .svg or .html (before any work is done)."""
    if path.suffix.lower() not in PICTURE_SUFFIXES:
        raise OptionError(f"--save {path}: the file name must end in .svg or .html.")


# rich's SVG template without its web fonts (fetched from a CDN) and its comment's link: the
# picture names local monospace fonts only, and draws the same with no network
SVG_FONTS = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace"
OFFLINE_SVG_FORMAT = re.sub(r"\s*<!--.*?-->|\s*@font-face \{\{.*?\}\}", "", CONSOLE_SVG_FORMAT, flags=re.DOTALL) \
    .replace("font-family: Fira Code, monospace", f"font-family: {SVG_FONTS}")


def save_alignment_picture(alignment: Alignment, subwords: bool, links: Collection[tuple[int, int]],
                           gold: Optional[PharaohLinks], path: Path) -> None:
    """Write what the terminal view prints (print_alignment_table) as an SVG or HTML file, at its
    natural width and with the heat-map colours."""
    check_picture_path(path)
    recorder = Console(record=True, file=io.StringIO(), force_terminal=False, no_color=False)   # records only
    print_alignment_table(recorder, alignment, subwords, links, gold)
    try:
        if path.suffix.lower() == ".svg":
            recorder.save_svg(str(path), title="attncli inspect alignment", code_format=OFFLINE_SVG_FORMAT)
        else:
            recorder.save_html(str(path))
    except OSError as exc:
        raise OptionError(f"--save {path}: cannot write ({exc.strerror or exc}).") from None


def aer_json(score: AlignmentScore) -> str:
    return json.dumps({"aer": score.aer, "precision": score.precision, "recall": score.recall,
                       "links": score.predicted, "sure": score.sure, "possible": score.possible,
                       "sentences": score.sentences})


def aer_text(score: AlignmentScore) -> str:
    return (f"AER {score.aer:.4f}  precision {score.precision:.4f}  recall {score.recall:.4f}  "
            f"({score.sentences} sentences, {score.predicted} links; gold {score.sure} sure, {score.possible} possible)")


# -- inspect step: one attention step with its numbers ----------------------------------------

STEP_VALUES_SHOWN = 6      # the first values of each vector in the terminal view
BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar `fraction` (0..1) of `width` characters, in eighths of a character."""
    eighths = int(round(max(0.0, min(1.0, fraction)) * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def _norm(vector) -> float:
    return float(np.sqrt((np.asarray(vector, dtype=np.float64) ** 2).sum()))


def vector_summary(vector, values: bool = True) -> str:
    """`N values, norm X: [the first few values …]`, as the terminal view and the page show a vector."""
    summary = f"{len(vector)} values, norm {_norm(vector):.3f}"
    if values:
        shown = " ".join(f"{float(v):+.3f}" for v in vector[:STEP_VALUES_SHOWN])
        summary += f": [{shown}{' …' if len(vector) > STEP_VALUES_SHOWN else ''}]"
    return summary


def _vector_lines(name: str, summary: str) -> Text:
    """`name` in bold, the vector's summary indented below it."""
    return Text(name, style="bold").append(f"\n    {summary}")


def _probability(value: float) -> str:
    """4 decimals, or 2 significant digits for what would print as 0.0000."""
    return f"{value:.4f}" if value >= 0.00005 or value == 0.0 else f"{value:.1e}"


def attention_step_json(step: StepExplanation) -> dict[str, Any]:
    """Every vector of the step in full (float32 values written exactly), so that the arithmetic
    can be redone: scores = encoder_states @ decoder_state, weights = softmax(scores), context =
    weights @ encoder_states, attentional = tanh(W_c [context; decoder_state] (+ b_c))."""
    def floats(vector) -> list[float]:
        return [float(v) for v in vector]

    return {
        "source_pieces": step.source_pieces, "target_pieces": step.target_pieces, "target_words": step.target_words,
        "target_word_of_piece": step.target_word_of_piece,
        "piece_index": step.piece_index, "word_index": step.word_index, "previous_piece": step.previous_piece,
        "target_given": step.given,
        "mask": [True] * len(step.source_pieces),
        "decoder_state": floats(step.decoder_state),
        "encoder_states": [floats(row) for row in step.encoder_states],
        "scores": floats(step.scores), "weights": floats(step.weights),
        "context": floats(step.context), "context_shares": floats(step.context_shares),
        "combined": floats(step.combined),
        "combine_bias": None if step.combine_bias is None else floats(step.combine_bias),
        "attentional": floats(step.attentional),
        "top": [{"piece": piece, "probability": probability} for piece, probability in step.top],
        "chosen": step.chosen, "chosen_probability": step.chosen_probability, "chosen_rank": step.chosen_rank,
        "note": "step piece_index predicts target_pieces[piece_index] after reading previous_piece; "
                "encoder_states: one h̄_s per source piece (</s> included), projected to the decoder size; "
                "one sentence, so no padding: mask is all true and no score is set to -inf; "
                "scores = encoder_states @ decoder_state; weights = softmax(scores); "
                "context = weights @ encoder_states; combined = [context; decoder_state]; "
                "attentional = tanh(W_c combined (+ combine_bias)), W_c = decoder.attention.combine.weight; "
                "top: softmax(decoder.output.weight @ attentional + decoder.output.bias), best first",
    }


def attention_step_text(step: StepExplanation) -> str:
    """`attention_step_json` as one line of JSON."""
    return json.dumps(attention_step_json(step), ensure_ascii=False)


def attention_step_view(step: StepExplanation) -> dict[str, Any]:
    """The numbers of one step as the terminal view prints them (strings), so that the page of
    `inspect step --save` shows exactly the same: where the step is, h_t, each source piece's
    score and weight (with its bar's fraction and look), c_t and its main sources, [c_t; h_t],
    h̃_t and the most probable next pieces (None: the gap before a chosen piece outside them)."""
    strongest = int(step.weights.argmax())
    shares = step.context_shares
    bias = step.combine_bias is not None
    return {
        "where": _step_where(step),
        "decoder_state": vector_summary(step.decoder_state),
        "sources": [{"piece": piece, "score": f"{float(score):.3f}", "weight": _probability(float(weight)),
                     "fraction": float(weight),
                     "look": "strongest" if s == strongest else ("weak" if weight < WEAK_PERCENT / 100 else "")}
                    for s, (piece, score, weight) in enumerate(zip(step.source_pieces, step.scores, step.weights))],
        "context": vector_summary(step.context),
        "context_from": [{"piece": step.source_pieces[s], "share": f"{100 * float(shares[s]):.1f}%"}
                         for s in np.argsort(-shares, kind="stable")[:3]],
        "combined": vector_summary(step.combined, values=False),
        "combine": (f"h̃_t = tanh(W_c [c_t; h_t]{' + b_c' if bias else ''}), "
                    f"W_c {len(step.attentional)}×{len(step.combined)}{'' if bias else ', no bias'}"),
        "attentional": vector_summary(step.attentional),
        "vocabulary": len(step.probabilities),
        "next": [None if row is None else {"rank": row[0], "piece": row[1], "p": _probability(row[2]),
                                           "fraction": row[2], "chosen": row[1] == step.chosen}
                 for row in _next_piece_rows(step)],
        "mark": "◀ given" if step.given else "◀ chosen",
    }


def _step_where(step: StepExplanation) -> str:
    """"target piece 3, first piece of word 3 'black'", or the end of the translation."""
    where = f"target piece {step.piece_index}"
    if step.word_index is None:
        return where + ", the end of the translation"
    first = step.piece_index == 0 or step.target_word_of_piece[step.piece_index - 1] != step.word_index
    return where + f", {'first piece of' if first else 'in'} word {step.word_index} {step.target_words[step.word_index]!r}"


def _next_piece_rows(step: StepExplanation) -> list[Optional[tuple[int, str, float]]]:
    """(rank, piece, p) of the top pieces, then, if the chosen one is not among them, a gap and it."""
    rows: list[Optional[tuple[int, str, float]]] = [
        (rank, piece, probability) for rank, (piece, probability) in enumerate(step.top, start=1)]
    if step.chosen not in [piece for piece, _ in step.top]:
        rows += [None, (step.chosen_rank, step.chosen, step.chosen_probability)]
    return rows


WEIGHT_STYLES = {"strongest": "bold green", "weak": "dim", "": ""}


def print_attention_step(console: Console, step: StepExplanation) -> None:
    """The terminal view of one attention step (fits 80 columns): h_t, then steps (1)-(5) and the
    most probable next pieces."""
    view = attention_step_view(step)
    source = Text("source pieces: ", style="dim").append(" ".join(step.source_pieces), style="")
    target = Text("target pieces: ", style="dim").append(" ".join(step.target_pieces), style="")
    target.append(f"  ({'--target' if step.given else 'the model’s translation'})", style="dim")
    head = Text(f"Step {step.piece_index}: after reading {step.previous_piece}, the decoder predicts ")
    head.append(step.chosen, style="bold")
    head.append(f"\n({view['where']}).")
    for line in (source, target, Text(), head, Text()):
        console.print(line)
    console.print(_vector_lines("h_t, the decoder state (top layer)", view["decoder_state"]))
    console.print()
    console.print(Text("(1) score(s) = h_t · h̄_s for each source piece s, h̄_s its encoder state\n"
                       "    (one sentence, so no padding: nothing is masked)\n"
                       "(2) a_t(s) = softmax(score)(s), the attention distribution", style="bold"))
    console.print(_scores_table(view))
    console.print()
    console.print(_vector_lines("(3) c_t = Σ_s a_t(s) h̄_s, the context vector", view["context"]))
    most = Text("    from: ")
    most.append(", ".join(f"{source['piece']} {source['share']}" for source in view["context_from"]))
    most.append("  (a_t(s) h̄_s·c_t / c_t·c_t)", style="dim")
    console.print(most)
    console.print(_vector_lines("(4) [c_t; h_t], c_t then h_t", view["combined"]))
    console.print(_vector_lines(f"(5) {view['combine']}", view["attentional"]))
    console.print()
    console.print(Text(f"Next piece: p = softmax(W_o h̃_t + b_o) over {view['vocabulary']} pieces", style="bold"))
    console.print(_next_pieces_table(view))


def _scores_table(view: dict[str, Any]) -> Table:
    """Steps (1) and (2): a row per source piece with its score, weight and bar."""
    table = Table()
    table.add_column("s", justify="right")
    table.add_column("source piece", no_wrap=True, overflow="ellipsis", max_width=20)
    table.add_column("(1) score", justify="right")
    table.add_column("(2) a_t", justify="right")
    table.add_column("", no_wrap=True, min_width=BAR_WIDTH)
    for s, source in enumerate(view["sources"]):
        table.add_row(str(s), Text(source["piece"]), source["score"],
                      Text(source["weight"], style=WEIGHT_STYLES[source["look"]]),
                      Text(_bar(source["fraction"]), style="green"))
    return table


def _next_pieces_table(view: dict[str, Any]) -> Table:
    """The most probable next pieces with their bars, the chosen (or given) one marked."""
    top = Table()
    top.add_column("rank", justify="right")
    top.add_column("piece", no_wrap=True, overflow="ellipsis", max_width=20)
    top.add_column("p", justify="right")
    top.add_column("", no_wrap=True, min_width=BAR_WIDTH + len(view["mark"]) + 1)
    for row in view["next"]:
        if row is None:
            top.add_row("…", "", "", "")
            continue
        bar = Text(_bar(row["fraction"]), style="green")
        if row["chosen"]:
            bar.append(" " + view["mark"], style="bold yellow")
        top.add_row(str(row["rank"]), Text(row["piece"], style="bold" if row["chosen"] else ""), row["p"], bar)
    return top



# -- inspect history: the validations, and the watched sentences' attention as it formed -------

NOTHING_WATCHED = "No watched sentences (train --watch SOURCE records how their attention forms)."


def history_summary(history: "TrainingHistory") -> Text:
    """One line: the model, how many validations in how many updates and minutes, the best dev BLEU
    (its row is bold in validations_table)."""
    records = history.records
    best = records[best_validation(history)]
    text = Text(history.folder.name, style="bold")
    text.append(f": {len(records)} validations in {records[-1]['step']:,} updates ({records[-1]['elapsed_s'] / 60:.0f} min); "
                f"best dev BLEU {best['dev_bleu']:.2f}")
    return text


def best_validation(history: "TrainingHistory") -> int:
    """The index of the best record, as training judges it: dev BLEU, then dev loss."""
    return max(range(len(history.records)),
               key=lambda index: (history.records[index]["dev_bleu"], -history.records[index]["dev_loss"]))


def validations_table(history: "TrainingHistory", scores: list[Optional[AlignmentScore]]) -> Table:
    """One row per validation: update, epoch, minutes, dev loss, BLEU, chrF, and the learning rate
    after it (where known) and the watched links' AER (with gold) when there are any; the best in bold."""
    rates, with_aer = history.rates, any(score is not None for score in scores)
    with_rates, best = any(rate is not None for rate in rates.after), best_validation(history)
    table = Table()
    for name in ("update", "epoch", "min", "dev loss", "BLEU", "chrF") + ("lr after",) * with_rates + ("AER",) * with_aer:
        table.add_column(name, justify="right")
    for index, record in enumerate(history.records):
        cells = [f"{record['step']:,}{'*' if history.averaged(index) else ''}", str(record["epoch"]),
                 f"{record['elapsed_s'] / 60:.1f}", f"{record['dev_loss']:.4f}", f"{record['dev_bleu']:.2f}",
                 f"{record['dev_chrf']:.2f}"]
        if with_rates:
            rate = rates.after[index]
            cells.append("" if rate is None and history.averaged(index) else
                         "?" if rate is None else f"{rate:.2e}{' ↓' if rates.decayed[index] else '  '}")
        if with_aer:
            cells.append("" if scores[index] is None else f"{scores[index].aer:.3f}")
        table.add_row(*cells, style="bold" if index == best else None)
    return table


def validations_notes(history: "TrainingHistory", with_aer: bool) -> list[Text]:
    """The footnotes of validations_table."""
    notes = []
    if any(history.averaged(index) for index in range(len(history.records))):
        notes.append("*: the averaged weights of the best checkpoints (train --average-last).")
    if any(rate is not None for rate in history.rates.after):
        notes.append("lr after: the rate of the updates that follow; ↓ decayed there (no progress).")
    if history.rates.note:
        notes.append(f"learning rate {history.rates.note}.")
    if with_aer:
        sentences = f"{len(history.gold())} sentence{'s' if len(history.gold()) > 1 else ''}"
        notes.append(f"AER: links = each target word's most attended source word; gold of {sentences}.")
    return [Text(note, style="dim") for note in notes]


def print_time_lapse(console: Console, history: "TrainingHistory", chosen: list[int]) -> None:
    """For each watched sentence, its word-level attention at the chosen validations, one table
    after another (as `inspect alignment` draws them), with ✓/✗/○ against gold where given."""
    gold = history.gold()
    for sentence, pair in enumerate(history.watched):
        head = Text(f"Watched sentence {sentence + 1} of {len(history.watched)}: ", style="bold")
        console.print(head.append(pair.source, style="bold"), soft_wrap=True)
        console.print(Text(f"target: {pair.target}" if pair.target is not None
                           else "target: the model's own greedy translation at each validation", style="dim"),
                      soft_wrap=True)
        for index in chosen:
            alignment = history.alignment(index, sentence)
            title = validation_title(history, index)
            links = set(alignment.links())
            if sentence in gold and (links or gold[sentence][0]):     # AER needs a link, predicted or sure
                title += f" · AER {score_alignments([gold[sentence]], [links]).aer:.3f}"
            if not alignment.tgt_words:
                console.print(Text(f"{title}: the translation is empty."), soft_wrap=True)
                continue
            console.print(Text(title), soft_wrap=True)        # not the table's title, which wraps at its width
            console.print(alignment_table(alignment, gold=gold.get(sentence)))
        console.print()
    console.print(legend(bool(gold)), soft_wrap=True)


def validation_title(history: "TrainingHistory", index: int) -> str:
    """"update 1,400 · epoch 19 · 4.0 min · dev BLEU 20.86": one validation, as the time-lapse heads it."""
    record = history.records[index]
    averaged = " (averaged weights)" if history.averaged(index) else ""
    return (f"update {record['step']:,}{averaged} · epoch {record['epoch']} · {record['elapsed_s'] / 60:.1f} min · "
            f"dev BLEU {record['dev_bleu']:.2f}")


def history_json(history: "TrainingHistory", chosen: list[int]) -> dict[str, Any]:
    """The validations (with the learning rate after each where known, and the watched links'
    AER with gold) and the watched sentences' matrices at the chosen validations."""
    validations = []
    for index, record in enumerate(history.records):
        score = history.aer(index)
        validations.append({
            **{key: record[key] for key in RECORD_NUMBERS},
            "averaged": history.averaged(index), "learning_rate_after": history.rates.after[index],
            "learning_rate_decayed": history.rates.decayed[index],
            "aer": None if score is None else {"aer": score.aer, "precision": score.precision, "recall": score.recall}})
    time_lapse = []
    for index in chosen:
        alignments = [history.alignment(index, sentence) for sentence in range(len(history.watched))]
        time_lapse.append({"step": history.records[index]["step"], "averaged": history.averaged(index), "sentences": [
            {"source_words": a.src_words, "target_words": a.tgt_words,
             "weights": [[round(float(w), DECIMALS) for w in row] for row in a.word_weights],
             "links": [list(link) for link in a.links()]} for a in alignments]})
    return {"model": str(history.folder), "validations": validations, "learning_rate_note": history.rates.note or None,
            "watch": [pair.to_dict() for pair in history.watched], "time_lapse": time_lapse,
            "note": "learning_rate_after: the rate of the update after the validation (null: not known); "
                    "time_lapse weights: rows = target_words, columns = source_words + </s>; "
                    "links: (source word, target word), each target word's most attended source word"}
