"""Training curves of `attncli inspect history`: dev BLEU, chrF and loss against updates or minutes.

In the terminal with plotext (text, any width), as a picture with matplotlib (--save FILE.svg or
.png; FILE.html is pages.py's page, which holds the SVG). Both are imported here, inside the
functions, so that no other command pays for them.
"""

from __future__ import annotations

import io
import math
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .config import check_save_suffix
from .errors import OptionError
from .history import TrainingHistory

PICTURE_SUFFIXES = (".svg", ".png", ".html")
SCORES_HEIGHT, LOSS_HEIGHT = 16, 12      # terminal rows of the two panels
X_LABELS = {False: "updates", True: "minutes"}


def curve_points(history: TrainingHistory, minutes: bool) -> dict[str, list[float]]:
    """x and the dev scores of every validation but the averaged weights' (it repeats an update)."""
    kept = [record for index, record in enumerate(history.records) if not history.averaged(index)]
    points = {"x": [record["elapsed_s"] / 60.0 if minutes else record["step"] for record in kept]}
    for key in ("dev_bleu", "dev_chrf", "dev_loss"):
        points[key] = [float(record[key]) for record in kept]
    return points


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick positions (1, 2, 2.5 or 5 times a power of ten apart) covering low..high."""
    span = max(high - low, abs(high) * 1e-3, 1e-9)
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * 10 ** math.floor(math.log10(span / most))
        if span / step <= most:
            break
    first = math.floor(low / step + 1e-9) * step
    return [round(first + k * step, 10) for k in range(int(math.ceil((high - first) / step - 1e-9)) + 1)]


def tick_label(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) and abs(value) >= 1000 else f"{value:g}"


def curves_text(history: TrainingHistory, width: int, minutes: bool = False, color: bool = False) -> str:
    """Two panels, `width` columns wide: dev BLEU and chrF, then dev loss, against updates or minutes."""
    import plotext

    points = curve_points(history, minutes)
    plotext.terminal.limit(False, False)          # the size asked for, whatever the terminal
    figure = plotext.figure
    figure.clear()
    figure.plot_size(width, SCORES_HEIGHT + LOSS_HEIGHT)
    figure.subplots(2, 1)
    figure.theme("simple" if color else "colorless")   # after subplots(), which it passes down to
    xticks = nice_ticks(0.0, max(points["x"]))
    scores, loss = figure.subplot(1, 1), figure.subplot(2, 1)
    for panel, height, title in ((scores, SCORES_HEIGHT, "dev BLEU and chrF"), (loss, LOSS_HEIGHT, "dev loss")):
        panel.plot_size(width, height)
        panel.title(title)
        panel.ruler("x").ticks(xticks, [tick_label(tick) for tick in xticks])
        panel.ruler("x").lim(0, max(points["x"]))
    for key, label, marker in (("dev_bleu", "dev BLEU", "hd"), ("dev_chrf", "dev chrF", "•")):
        _draw(scores, points["x"], points[key], marker, label)
    high = max(points["dev_chrf"] + points["dev_bleu"] + [1.0])
    yticks = nice_ticks(0.0, high, 5)
    scores.ruler("y").ticks(yticks, [tick_label(tick) for tick in yticks])
    scores.ruler("y").lim(0, max(yticks[-1], high))
    scores.legend(x=max(points["x"]), y=0, ha="right", va="bottom", relative=True)
    _draw(loss, points["x"], points["dev_loss"], "hd")
    yticks = nice_ticks(min(points["dev_loss"]), max(points["dev_loss"]), 4)
    loss.ruler("y").ticks(yticks, [f"{tick:g}" for tick in yticks])
    loss.label(X_LABELS[minutes])
    return figure.build().string(colorless=not color).rstrip("\n")


def _draw(panel, x: list[float], y: list[float], marker: str, label: Optional[str] = None) -> None:
    signal = panel.signal(x, y, marker=marker)
    signal.lines()
    if label:
        signal.label(label)
    panel.draw(signal)


def check_save_path(path: Path) -> None:
    """Refuse a --save file name that is not .svg, .png or .html (before any work is done)."""
    check_save_suffix(path, PICTURE_SUFFIXES)


def save_curves(history: TrainingHistory, path: Path, minutes: bool = False) -> None:
    """The curves (and the learning rate, where known) as an SVG or PNG picture (an .html page is
    pages.py's: it holds `curves_svg`)."""
    check_save_path(path)
    suffix = path.suffix.lower()
    with _curves(history, path, minutes) as figure:
        try:
            figure.savefig(path, format=suffix[1:], metadata={"Date": None} if suffix == ".svg" else {}, dpi=150)
        except OSError as exc:
            raise OptionError(f"--save {path}: cannot write ({exc.strerror or exc}).") from None


def curves_svg(history: TrainingHistory, path: Path, minutes: bool = False) -> str:
    """The curves as an <svg> element to put inside an HTML page (`path`: the page, for errors).
    Without the XML declaration, doctype, metadata and namespace declarations, which HTML does not
    need: nothing in the page names a web address."""
    svg = io.StringIO()
    with _curves(history, path, minutes) as figure:
        figure.savefig(svg, format="svg", metadata=dict.fromkeys(("Date", "Type", "Format", "Creator")))
    text = svg.getvalue()
    element = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text[text.index("<svg"):], count=2)
    return element.replace("xlink:href=", "href=").rstrip("\n")


@contextmanager
def _curves(history: TrainingHistory, path: Path, minutes: bool) -> Iterator:
    """The curves' matplotlib figure, with text kept as text and stable ids while it is saved;
    without matplotlib (an optional extra) --save is refused in one line."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise OptionError(f"--save {path}: drawing pictures needs matplotlib, an optional extra: "
                          "pip install 'attncli[plots]' (or pip install matplotlib).") from None

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "attncli"}):
        yield _curves_figure(Figure, history, minutes)


def _curves_figure(Figure, history: TrainingHistory, minutes: bool):
    points = curve_points(history, minutes)
    rates = [(record["elapsed_s"] / 60.0 if minutes else record["step"], rate)
             for record, rate in zip(history.records, history.rates.after) if rate is not None]
    figure = Figure(figsize=(8, 7.5 if rates else 5.5), layout="constrained")
    axes = figure.subplots(3 if rates else 2, 1, sharex=True)
    axes[0].plot(points["x"], points["dev_bleu"], marker="o", markersize=3, label="dev BLEU")
    axes[0].plot(points["x"], points["dev_chrf"], marker="s", markersize=3, label="dev chrF")
    axes[0].set_ylabel("score (greedy search)")
    axes[0].set_ylim(bottom=0)
    axes[0].legend(loc="lower right")
    axes[1].plot(points["x"], points["dev_loss"], marker="o", markersize=3, color="tab:red")
    axes[1].set_ylabel("dev loss")
    if rates:
        axes[2].step(*zip(*rates), where="post", color="tab:green")
        axes[2].set_ylabel("learning rate\n(after each validation)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(X_LABELS[minutes])
    figure.suptitle(f"{history.folder.name}: training curves")
    return figure
