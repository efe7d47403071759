"""Everything `inspect` shows: alignment tables, their pictures, JSON and Pharaoh lines, AER.

Text formats are returned as strings; tables are rich renderables, printed by `print_alignment_table`
on the console the caller gives (the CLI's stdout) or recorded into an SVG/HTML picture. Tokens
are wrapped in `Text` so that a token such as `[b]` is shown as it is, not parsed as markup.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Collection, Optional

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .alignment import Alignment, AlignmentScore, PharaohLinks, format_pharaoh
from .errors import OptionError

WEAK_PERCENT = 10   # cells below this are dimmed


def _cell(percent: float, strongest: bool, gold_mark: str) -> Text:
    value = round(percent)
    text = "·" if value == 0 else str(value)
    style = "bold reverse green" if strongest else ("dim" if value < WEAK_PERCENT else "")
    cell = Text(text, style=style)
    if gold_mark:
        cell.append(gold_mark, style="bold yellow" if gold_mark == "○" else ("bold green" if gold_mark == "✓" else "bold red"))
    return cell


def alignment_table(alignment: Alignment, subwords: bool = False, links: Collection[tuple[int, int]] | None = None,
                    gold: PharaohLinks | None = None, title: str | None = None) -> Table:
    """One row per target word (or piece), one column per source word (or piece), weights in %.

    The strongest cell of each row is highlighted; weak cells are dimmed. With `gold`
    (sure, possible) the word table marks each predicted link ✓ (in gold) or ✗ (not in gold),
    and ○ a sure gold link the prediction missed.
    """
    if subwords:
        columns = alignment.src_pieces + ["</s>"]
        rows = alignment.tgt_pieces + ["</s>"]
        weights = alignment.piece_weights
    else:
        columns = alignment.src_words + ["</s>"]
        rows = alignment.tgt_words
        weights = alignment.word_weights
    link_set = set(links) if links is not None else set(alignment.links())
    sure, possible = gold if gold else (set(), set())
    table = Table(title=title, title_justify="left", show_lines=False, pad_edge=False)
    table.add_column(Text("target \\ source"), no_wrap=True, style="bold")
    for name in columns:
        table.add_column(Text(name), justify="right", no_wrap=True)
    for j, row_name in enumerate(rows):
        row = weights[j] * 100.0
        strongest = int(row.argmax()) if row.size else -1
        cells = []
        for i in range(len(columns)):
            mark = ""
            if gold and not subwords and i < len(alignment.src_words):
                predicted = (i, j) in link_set
                if predicted:
                    mark = "✓" if (i, j) in (possible | sure) else "✗"
                elif (i, j) in sure:
                    mark = "○"
            cells.append(_cell(float(row[i]), i == strongest, mark))
        table.add_row(Text(row_name), *cells)
    return table


def legend(with_gold: bool) -> Text:
    text = Text("Cells: attention in % (row sums to 100); ", style="dim")
    text.append("strongest", style="bold reverse green")
    text.append(" per row; dim < 10%; · ≈ 0.", style="dim")
    if with_gold:
        text.append(" ✓ link in gold, ✗ link not in gold, ○ sure gold link missed.", style="dim")
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
    """The terminal view of one alignment: the target sentence, the table, the legend."""
    console.print(Text(" ".join(alignment.tgt_words)))
    console.print(alignment_table(alignment, subwords, links, gold))
    console.print(legend(gold is not None), soft_wrap=True)


def check_picture_path(path: Path) -> None:
    """Refuse a --save file name that is not .svg or .html (before any work is done)."""
    if path.suffix.lower() not in PICTURE_SUFFIXES:
        raise OptionError(f"--save {path}: the file name must end in .svg or .html.")


def save_alignment_picture(alignment: Alignment, subwords: bool, links: Collection[tuple[int, int]],
                           gold: Optional[PharaohLinks], path: Path) -> None:
    """Write the table, titled with the source sentence, and its legend as an SVG or HTML file."""
    check_picture_path(path)
    recorder = Console(record=True, width=200, file=io.StringIO())   # records only; nothing is shown
    recorder.print(alignment_table(alignment, subwords, links, gold, title=" ".join(alignment.src_words)))
    recorder.print(legend(gold is not None))
    try:
        if path.suffix.lower() == ".svg":
            recorder.save_svg(str(path), title="attncli inspect alignment")
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
