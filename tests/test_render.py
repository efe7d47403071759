"""The alignment table, cell by cell, on hand-made attention whose every cell is known."""

import io

import numpy as np
from rich.color import Color
from rich.console import Console
from rich.style import Style

from attncli.alignment import word_alignment
from attncli.heat import heat_colour, text_colour
from attncli.render import MARK_STYLES, alignment_table, legend

# Source words "el [b] perro" (one piece each), target words "the [red]dog": tokens that rich
# would read as markup if they were not wrapped in Text. Rows: the attention of each target piece,
# then the EOS prediction; columns: the source pieces, then the source EOS.
WEIGHTS = np.array([[0.62, 0.004, 0.306, 0.07],    # the: el strongest; [b] rounds to 0 (·); 7 is weak
                    [0.05, 0.1, 0.25, 0.6],         # [red]dog: the source EOS is the strongest; 10 is not weak
                    [0.1, 0.1, 0.1, 0.7]], np.float32)


def simple_alignment():
    return word_alignment(["el", "[b]", "perro"], ["the", "[red]dog"], ["▁el", "▁[b]", "▁perro"],
                          ["▁the", "▁[red]dog"], [0, 1, 2], [0, 1], WEIGHTS, -1.5)


def styled_cells(table, width=120):
    """Rows of the rendered table (header first): each cell as (text, styles of its visible parts)."""
    console = Console(file=io.StringIO(), width=width)
    rows = []
    for line in console.render_lines(table, console.options, pad=False):
        if not line or line[0].text not in ("┃", "│"):
            continue
        cells, text, styles = [], "", []
        for segment in line[1:]:
            if segment.text in ("┃", "│"):
                cells.append((text.strip(), styles))
                text, styles = "", []
                continue
            if segment.text.strip():
                styles.append(segment.style)
            text += segment.text
        rows.append(cells)
    return rows


def texts(rows):
    return [[text for text, _ in row] for row in rows]


def test_word_table_cells_hold_rounded_percentages_under_the_right_headers():
    header, *rows = texts(styled_cells(alignment_table(simple_alignment())))
    # "[b]" and "[red]dog" are shown as they are, not swallowed as markup
    assert header == ["target \\ source", "el", "[b]", "perro", "</s>"]
    assert rows == [["the", "62", "·", "31", "7"],
                    ["[red]dog", "5", "10", "25", "60"]]


def test_the_strongest_cell_of_each_row_is_underlined_and_every_cell_is_shaded_by_its_weight():
    _, *rows = styled_cells(alignment_table(simple_alignment()))
    underlined = [[i for i, (_, styles) in enumerate(row) if styles[0] and styles[0].underline and styles[0].bold]
                  for row in rows]
    assert underlined == [[1], [4]]            # the: column "el"; [red]dog: the source EOS column
    word_weights = simple_alignment().word_weights
    for row, weights in zip(rows, word_weights):
        for (_, styles), weight in zip(row[1:], weights):
            shade = styles[0].bgcolor.triplet                                 # a heat map, cell by cell
            assert max(abs(a - b) for a, b in zip(shade, Color.parse(heat_colour(float(weight))).triplet)) <= 1
            assert styles[0].color.triplet.hex == text_colour(shade.hex)


def test_subword_table_shows_pieces_and_the_eos_row_and_word_table_merges_them():
    # source "perros [b]" = pieces ▁perr os ▁[b]; target "dogs" = pieces ▁dog s
    pieces = np.array([[0.3, 0.25, 0.4, 0.05],
                       [0.1, 0.5, 0.3, 0.1],
                       [0.2, 0.2, 0.2, 0.4]], np.float32)
    alignment = word_alignment(["perros", "[b]"], ["dogs"], ["▁perr", "os", "▁[b]"], ["▁dog", "s"],
                               [0, 0, 1], [0, 0], pieces, -2.0)
    header, *rows = texts(styled_cells(alignment_table(alignment, subwords=True)))
    assert header == ["target \\ source", "▁perr", "os", "▁[b]", "</s>"]
    assert rows == [["▁dog", "30", "25", "40", "5"],
                    ["s", "10", "50", "30", "10"],
                    ["</s>", "20", "20", "20", "40"]]
    # words: perros = sum of its two pieces, dogs = mean of its two pieces: (55 + 60) / 2, (40 + 30) / 2, ...
    header, *rows = texts(styled_cells(alignment_table(alignment)))
    assert header == ["target \\ source", "perros", "[b]", "</s>"]
    assert rows == [["dogs", "58", "35", "8"]]     # 57.5 and 7.5 as float32 sums: 57.50001, 7.5000005


def gold_grid():
    """3 x 3 words; the predicted links are each row's strongest cell: (0,0), (2,1), (2,2), a set
    that differs from its transpose."""
    weights = np.array([[0.8, 0.1, 0.05, 0.05],
                        [0.1, 0.3, 0.5, 0.1],
                        [0.2, 0.1, 0.6, 0.1],
                        [0.0, 0.0, 0.0, 1.0]], np.float32)
    return word_alignment(["a", "b", "c"], ["x", "y", "z"], ["▁a", "▁b", "▁c"], ["▁x", "▁y", "▁z"],
                          [0, 1, 2], [0, 1, 2], weights, -3.0)


def marks(rows):
    """{(source word, target word): mark} for every cell that ends in a gold mark."""
    return {(i - 1, j): text[-1] for j, row in enumerate(rows) for i, (text, _) in enumerate(row)
            if i > 0 and text[-1:] in ("✓", "✗", "○")}


def test_gold_marks_sit_on_the_cells_of_their_links():
    alignment = gold_grid()
    assert alignment.links() == [(0, 0), (2, 1), (2, 2)]
    sure = {(0, 0), (1, 1)}                    # (1, 1) is not predicted: ○
    possible = {(2, 1)}                        # predicted and possible: ✓; (2, 2) predicted, not gold: ✗
    _, *rows = styled_cells(alignment_table(alignment, gold=(sure, possible)))
    assert marks(rows) == {(0, 0): "✓", (2, 1): "✓", (1, 1): "○", (2, 2): "✗"}
    assert texts(rows) == [["x", "80✓", "10", "5", "5"],
                           ["y", "10", "30○", "50✓", "10"],
                           ["z", "20", "10", "60✗", "10"]]
    # each mark on a badge of its own colour, readable on any shade
    badges = {(i - 1, j): styles[-1].bgcolor for j, row in enumerate(rows) for i, (text, styles) in enumerate(row)
              if text[-1:] in ("✓", "✗", "○")}
    assert badges == {link: Style.parse(MARK_STYLES[mark]).bgcolor for link, mark in marks(rows).items()}
    assert len({Style.parse(style).bgcolor for style in MARK_STYLES.values()}) == 3


def test_gold_marks_follow_the_links_given_not_the_strongest_cells():
    alignment = gold_grid()
    sure, possible = {(0, 0), (1, 1)}, {(2, 1)}
    _, *rows = styled_cells(alignment_table(alignment, links=[(0, 0)], gold=(sure, possible)))
    # (2, 1) is possible only, so without its link it is unmarked; the sure (1, 1) is still missed
    assert marks(rows) == {(0, 0): "✓", (1, 1): "○"}


def test_no_gold_no_marks_and_the_legend_explains_marks_only_with_gold():
    alignment = gold_grid()
    for subwords in (False, True):
        assert marks(styled_cells(alignment_table(alignment, subwords=subwords))[1:]) == {}
    assert marks(styled_cells(alignment_table(alignment, subwords=True, gold=({(1, 1)}, set())))[1:]) == {}
    assert "✓" in legend(True).plain and not any(mark in legend(False).plain for mark in "✓✗○")

