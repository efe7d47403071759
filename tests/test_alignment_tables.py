"""Alignment tables a person can read (issue 16): long sentences at 80 columns, a heat map of every
cell, pictures sized to the table and drawn offline, punctuation in columns of its own. The CLI
runs in a child process with the shipped models, on a pseudo-terminal where a terminal matters."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.style import Style

from attncli.alignment import word_alignment, word_parts
from attncli.heat import HEAT_STOPS, heat_colour, text_colour
from attncli.render import alignment_table, legend, print_alignment_table
from conftest import SUBPROCESS_ENV, table_cells
from test_render import styled_cells

# 21 words; the shipped es-en model reads "," and "." as pieces of their own, so the table has 23
# source words and </s>
LONG = ("Mi hermano pequeño quiere aprender a tocar la guitarra, pero no tiene tiempo porque trabaja todos "
        "los días en la oficina.")
LONG_COLUMNS = LONG.replace(",", " ,").replace(".", " .").split()
FR_EN = ["les enfants ont besoin de jouets et de loisirs .", "--model", "fr-en", "--target",
         "they need toys and entertainment .", "--gold", "0p0 1p0 2p1 3p1 4p1 5-2 6-3 7p1 8p4 9-5"]
ANSI = re.compile(r"\x1b\[([0-9;]*)m")
ENV = {key: value for key, value in SUBPROCESS_ENV.items()
       if key not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS")}


def piped(args: list[str], **env: str) -> str:
    """stdout of `attncli ARGS` written to a pipe, COLUMNS=80 (which a pipe does not have to follow)."""
    result = subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, timeout=120,
                            env=dict(ENV, COLUMNS="80", **env))
    assert result.returncode == 0, result.stderr
    return result.stdout


def on_terminal(args: list[str], columns: int = 80, **env: str) -> str:
    """stdout of `attncli ARGS` written to a pseudo-terminal `columns` wide, escape codes and all."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    child = subprocess.Popen([sys.executable, "-m", "attncli", *args], stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.PIPE, env=dict(ENV, COLUMNS=str(columns), TERM="xterm-256color",
                                                              COLORTERM="truecolor", **env))
    os.close(slave)
    output = b""
    while select.select([master], [], [], 60)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:                 # the child closed its side (EIO on Linux)
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert child.wait(timeout=60) == 0, child.stderr.read()
    return output.decode().replace("\r\n", "\n")


def plain(text: str) -> str:
    return ANSI.sub("", text)


def cells_of(line: str, bar: str) -> list[str]:
    return [cell.strip() for cell in line.split(bar)[1:-1]]


def luminance(colour: str) -> float:
    """WCAG relative luminance of "#rrggbb"."""
    channels = [int(colour[i: i + 2], 16) / 255 for i in (1, 3, 5)]
    red, green, blue = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: str, other: str) -> float:
    """WCAG contrast ratio: 4.5 is the least for normal text (level AA)."""
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# -- 1. width: blocks on a terminal, the natural width anywhere else --------------------------------

def test_a_21_word_sentence_on_an_80_column_terminal_is_blocks_with_whole_headers_and_numbers():
    lines = plain(on_terminal(["inspect", "alignment", LONG])).splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert not any("…" in line for line in lines)
    headings = [line for line in lines if line.startswith("source words ")]
    assert len(headings) >= 2 and headings[0].startswith("source words 1–")
    assert headings[-1].endswith(" of 23 and </s>")
    headers = [cells_of(line, "┃") for line in lines if line.startswith("┃")]
    assert len(headers) == len(headings)                       # a header line per block, none folded
    assert all(header[0] == "target \\ source" for header in headers)
    assert [name for header in headers for name in header[1:]] == LONG_COLUMNS + ["</s>"]
    body = [cells_of(line, "│") for line in lines if line.startswith("│")]
    names = [row[0] for row in body]
    assert names == names[: len(names) // len(headings)] * len(headings)   # each block names every target word
    assert all(re.fullmatch(r"\d+|·", cell) for row in body for cell in row[1:])   # numbers whole


def test_piped_output_is_one_table_at_its_natural_width():
    stdout = piped(["inspect", "alignment", LONG])
    lines = stdout.splitlines()
    header, rows = table_cells(stdout)                         # one header: one table, not blocks
    assert header == ["target \\ source", *LONG_COLUMNS, "</s>"]
    assert lines[1].startswith("┏")                            # the translation is one line, not wrapped
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert len({cell_len(line) for line in table}) == 1 and cell_len(table[0]) > 80
    assert all(re.fullmatch(r"\d+|·", cell) for row in rows for cell in row[1:])


def test_a_word_too_long_for_the_terminal_is_folded_not_cut():
    long_source, long_target = "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung", "x" * 85
    alignment = word_alignment(["el", long_source], ["the", long_target], ["▁el", "▁" + long_source],
                               ["▁the", "▁" + long_target], [0, 1], [0, 1],
                               np.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], np.float32), -1.0)
    console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    print_alignment_table(console, alignment, False, alignment.links())
    lines = plain(console.file.getvalue()).splitlines()
    assert max(cell_len(line) for line in lines) <= 80 and not any("…" in line for line in lines)
    block = lines[lines.index("source word 2 of 2"):]
    block = block[: next(n for n, line in enumerate(block) if line.startswith("└"))]
    header = [cells_of(line, "┃")[1] for line in block if line.startswith("┃")]
    assert "".join(header) == long_source                                # folded over lines, every letter kept
    body = [cells_of(line, "│") for line in block if line.startswith("│")]
    assert "".join(row[0] for row in body[1:]) == long_target and ["the", "30"] == body[0]
    assert "80" in body[1]                                               # its number whole


# -- 2. a heat map: every cell shaded by its weight -----------------------------------------------

def sgr_codes(text: str) -> list[int]:
    return [int(code) for params in ANSI.findall(text) for code in params.split(";") if code]


def test_on_a_terminal_every_cell_is_shaded_and_NO_COLOR_leaves_the_same_plain_numbers():
    args = ["inspect", "alignment", "Tengo un perro negro.", "--target", "I have a black dog."]
    coloured = on_terminal(args)
    shades = set(re.findall(r"48;2;(\d+);(\d+);(\d+)", coloured))
    assert len(shades) >= 4                                     # weights of 100, 56, 44 and ~0 differ
    uncoloured = on_terminal(args, NO_COLOR="1")
    assert plain(uncoloured) == plain(coloured)
    assert not [code for code in sgr_codes(uncoloured) if 30 <= code <= 49 or 90 <= code <= 107]
    assert 4 in sgr_codes(uncoloured)                           # the strongest cells: underlined still


def test_weights_of_50_28_and_22_get_three_shades_lighter_with_weight_and_readable_text():
    alignment = word_alignment(["perro", "negro"], ["dog"], ["▁perro", "▁negro"], ["▁dog"], [0, 1], [0],
                               np.array([[0.5, 0.28, 0.22], [0.0, 0.0, 1.0]], np.float32), -1.0)
    _, row = styled_cells(alignment_table(alignment))
    looks = [styles[0] for _, styles in row[1:]]
    shades = [look.bgcolor.triplet.hex for look in looks]
    assert len(set(shades)) == 3
    assert luminance(shades[0]) > luminance(shades[1]) > luminance(shades[2])     # 50 > 28 > 22
    assert all(contrast(look.color.triplet.hex, look.bgcolor.triplet.hex) >= 4.5 for look in looks)
    assert looks[0].bold and looks[0].underline and not looks[1].underline        # the strongest


def test_the_scale_is_perceptually_ordered_and_its_text_always_readable():
    assert heat_colour(0.0) == HEAT_STOPS[0] == "#440154" and heat_colour(1.0) == HEAT_STOPS[-1] == "#fde725"
    shades = [heat_colour(step / 200) for step in range(201)]
    assert all(luminance(a) < luminance(b) for a, b in zip(shades, shades[1:]))
    assert min(contrast(shade, text_colour(shade)) for shade in shades) >= 4.5


def test_the_legend_shows_the_scale_and_gold_marks_are_readable_badges():
    key = legend(True)
    shades = [(key.plain[span.start: span.end].strip(), Style.parse(str(span.style)).bgcolor)
              for span in key.spans if Style.parse(str(span.style)).bgcolor]
    scale = [(text, colour.triplet.hex) for text, colour in shades if text.isdigit()]
    assert [text for text, _ in scale] == ["0", "25", "50", "75", "100"]
    assert all(luminance(a) < luminance(b) for (_, a), (_, b) in zip(scale, scale[1:]))
    badges = [Style.parse(str(span.style)) for span in key.spans if key.plain[span.start: span.end] in "✓✗○"]
    assert len(badges) == 3
    assert all(contrast(badge.color.triplet.hex, badge.bgcolor.triplet.hex) >= 4.5 for badge in badges)


# -- 3. pictures: what the terminal shows, sized to it, drawn offline --------------------------------

def svg_lines(svg: str) -> list[str]:
    """The text of the picture's terminal, line by line, as rich placed it (x, y in character cells)."""
    root = ElementTree.fromstring(svg)
    matrix = next(g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class", "").endswith("-matrix"))
    placed: dict[int, dict[int, str]] = {}
    for text in matrix.iter("{http://www.w3.org/2000/svg}text"):
        line, column = round((float(text.get("y")) - 20) / 24.4), round(float(text.get("x")) / 12.2)
        placed.setdefault(line, {})[column] = text.text.replace("\xa0", " ")
    lines = []
    for line in range(max(placed) + 1):
        row = ""
        for column, part in sorted(placed.get(line, {}).items()):
            row = row.ljust(column) + part
        lines.append(row.rstrip())
    return lines


def test_svg_is_the_terminal_text_at_its_width_with_local_fonts_only(tmp_path):
    picture = tmp_path / "alignment.svg"
    stdout = piped(["inspect", "alignment", *FR_EN, "--save", picture], NO_COLOR="1")
    svg = picture.read_text(encoding="utf-8")
    assert svg_lines(svg) == [line.rstrip() for line in stdout.splitlines()]        # translation first, legend
    assert re.findall(r"https?://[^\s\"'<>)]+", svg) == ["http://www.w3.org/2000/svg"]   # the namespace only
    assert "@font-face" not in svg and "url(" not in svg.replace("url(#", "")
    assert "DejaVu Sans Mono" in svg
    width = float(svg.split('viewBox="0 0 ')[1].split()[0])
    assert abs(width / 12.2 - max(cell_len(line) for line in stdout.splitlines())) <= 2   # sized to the table
    assert "#fde725" in svg or "#e9e525" in svg                  # heat-map fills, NO_COLOR or not


def test_html_has_the_heat_map_and_every_coloured_text_is_readable(tmp_path):
    picture = tmp_path / "alignment.html"
    piped(["inspect", "alignment", *FR_EN, "--save", picture])
    html = picture.read_text(encoding="utf-8")
    rules = re.findall(r"\{color: (#[0-9a-f]{6}); [^}]*background-color: (#[0-9a-f]{6})", html)
    assert len({background for _, background in rules}) >= 8
    assert all(contrast(text, background) >= 4.5 for text, background in rules)
    assert "they need toys and entertainment ." in html


# -- 4. punctuation in columns and rows of its own -------------------------------------------------

def test_punctuation_pieces_get_their_own_columns_and_rows_summed_and_averaged_as_words_are():
    # source "perro negro." = ▁perro ▁negr o . ; target "dog." = ▁dog .
    weights = np.array([[0.7, 0.05, 0.05, 0.1, 0.1],      # ▁dog
                        [0.0, 0.1, 0.1, 0.4, 0.4],        # .
                        [0.0, 0.0, 0.0, 0.0, 1.0]], np.float32)
    alignment = word_alignment(["perro", "negro."], ["dog."], ["▁perro", "▁negr", "o", "."], ["▁dog", "."],
                               [0, 1, 1, 1], [0, 0], weights, -1.0)
    header, *rows = [[text for text, _ in row] for row in styled_cells(alignment_table(alignment))]
    assert header == ["target \\ source", "perro", "negro", ".", "</s>"]
    assert rows == [["dog", "70", "10", "10", "10"],            # negro = ▁negr + o
                    [".", "·", "20", "40", "40"]]
    # whitespace words (JSON, Pharaoh, AER) as before: "dog." is the mean of ▁dog and ".", and its
    # strongest word is "negro." (40 against 35), the misleading row that the table no longer shows
    assert [round(100 * w) for w in alignment.word_weights[0]] == [35, 40, 25]
    assert alignment.src_words == ["perro", "negro."] and alignment.links() == [(1, 0)]


def test_gold_marks_sit_on_the_words_own_cells_not_their_punctuation():
    weights = np.array([[0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.0, 0.0, 1.0]], np.float32)
    alignment = word_alignment(["¿perro"], ["dog."], ["▁¿", "perro"], ["▁dog", "."], [0, 0], [0, 0], weights, -1)
    header, *rows = [[text for text, _ in row] for row in
                     styled_cells(alignment_table(alignment, gold=({(0, 0)}, {(0, 0)})))]
    assert header == ["target \\ source", "¿", "perro", "</s>"]
    assert rows == [["dog", "10", "80✓", "10"], [".", "60", "20", "20"]]


@pytest.mark.parametrize("word,pieces,parts,own", [
    ("tren?", ["▁tren", "?"], ["tren", "?"], 0),
    ("¿Dónde", ["▁¿", "D", "ónde"], ["¿", "Dónde"], 1),
    ("(sí)", ["▁", "(", "s", "í", ")"], ["(", "sí", ")"], 1),
    ("«Hola»...", ["▁«", "H", "o", "la", "»", ".", ".", "."], ["«", "Hola", "»..."], 1),
    ("...", ["▁.", ".", "."], ["..."], 0),                       # punctuation alone stays one word
    ("don't", ["▁don", "'", "t"], ["don't"], 0),                 # inside a word: kept
    ("hola…", ["▁hola", "..."], ["hola…"], 0),                   # pieces normalised away from the text: kept
    ("perro🐕.", ["▁perro", "<unk:🐕>", "."], ["perro🐕", "."], 0),
])
def test_word_parts(word, pieces, parts, own):
    found, index = word_parts(word, pieces)
    assert [text for text, _ in found] == parts and index == own
    assert sum(count for _, count in found) == len(pieces)


def test_the_shipped_model_shows_dog_and_its_full_stop_apart():
    args = ["inspect", "alignment", "Tengo un perro negro.", "--target", "I have a black dog."]
    header, rows = table_cells(piped(args))
    assert header == ["target \\ source", "Tengo", "un", "perro", "negro", ".", "</s>"]
    assert [row[0] for row in rows] == ["I", "have", "a", "black", "dog", "."]
    dog = rows[4][1:]
    assert dog.index(max(dog, key=lambda cell: int(cell) if cell.isdigit() else 0)) == 2      # dog -> perro
    links = [tuple(map(int, link.split("-"))) for link in piped([*args, "--format", "pharaoh"]).split()]
    assert max(i for i, _ in links) <= 3 and max(j for _, j in links) <= 4          # whitespace words still
