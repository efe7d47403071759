"""The colour scale of attention weights: one owner for the heat-map colours that alignment tables
use in the terminal and in their pictures (render.py), so both shade a weight alike.

The scale is viridis, matplotlib's default colour map: perceptually even (equal steps of weight
look like equal steps of colour), readable by colour-blind people and in grey. Eleven stops,
interpolated in between; no matplotlib needed.
"""

from __future__ import annotations

HEAT_STOPS = ("#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
              "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725")   # viridis at 0, 0.1, ..., 1
DARK_TEXT, LIGHT_TEXT = "#000000", "#ffffff"


def heat_colour(fraction: float) -> str:
    """The colour "#rrggbb" of a weight `fraction` (0..1, clipped) on the scale."""
    position = min(max(fraction, 0.0), 1.0) * (len(HEAT_STOPS) - 1)
    low = min(int(position), len(HEAT_STOPS) - 2)
    mix = position - low
    below, above = _rgb(HEAT_STOPS[low]), _rgb(HEAT_STOPS[low + 1])
    return "#" + "".join(f"{round(a + (b - a) * mix):02x}" for a, b in zip(below, above))


def text_colour(background: str) -> str:
    """Black or white, whichever contrasts more with `background` (WCAG contrast ratio)."""
    luminance = _luminance(_rgb(background))
    return DARK_TEXT if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else LIGHT_TEXT


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance of an sRGB colour (0 black .. 1 white)."""
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(channel) for channel in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
