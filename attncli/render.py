"""Alignments as rich renderables: a table of attention weights in percent.

Returns renderables and prints nothing. Tokens are wrapped in `Text` so that a token such as
`[b]` is shown as it is, not parsed as markup.
"""

from __future__ import annotations

from typing import Collection

from rich.table import Table
from rich.text import Text

from .alignment import Alignment

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
                    gold: tuple[set, set] | None = None, title: str | None = None) -> Table:
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
