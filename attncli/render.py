"""What `inspect alignment` and `inspect aer` show: alignment tables, their pictures, JSON and
Pharaoh lines, AER. (`inspect step` is step_view.py's, `inspect history` history_view.py's and
plots.py's; the HTML pages pages.py's.)

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
from typing import Any, Collection, Optional

import numpy as np
from rich.cells import cell_len
from rich.console import CONSOLE_SVG_FORMAT, Console
from rich.padding import Padding
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .alignment import (Alignment, AlignmentScore, PharaohLinks, TableWords, format_pharaoh,
                        table_weights, table_words)
from .config import check_save_suffix
from .errors import OptionError
from .heat import heat_colour, text_colour

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
    check_save_suffix(path, PICTURE_SUFFIXES)


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
