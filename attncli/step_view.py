"""What `inspect step` shows: one decoder step of Luong attention with its numbers, in the terminal
(80 columns) and as JSON with every vector in full; `attention_step_view` gives the strings both
the terminal and the HTML page (pages.py) show, so they cannot differ.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from .attention_steps import StepExplanation

WEAK_PERCENT = 10   # weights below this are dimmed

STEP_VALUES_SHOWN = 6      # the first values of each vector in the terminal view
BAR_WIDTH = 24
LEXICAL_LINE = ("lexical model: l_t = (tanh(W_l f_t) + f_t) / 2,\n"
                "    f_t = tanh(Σ_s a_t(s) e_s), e_s the source pieces' embeddings")
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
        "lexical": None if step.lexical is None else floats(step.lexical),
        "top": [{"piece": piece, "probability": probability} for piece, probability in step.top],
        "chosen": step.chosen, "chosen_probability": step.chosen_probability, "chosen_rank": step.chosen_rank,
        "note": "step piece_index predicts target_pieces[piece_index] after reading previous_piece; "
                "encoder_states: one h̄_s per source piece (</s> included), projected to the decoder size; "
                "one sentence, so no padding: mask is all true and no score is set to -inf; "
                "scores = encoder_states @ decoder_state; weights = softmax(scores); "
                "context = weights @ encoder_states; combined = [context; decoder_state]; "
                "attentional = tanh(W_c combined (+ combine_bias)), W_c = decoder.attention.combine.weight; "
                "lexical (null without the lexical model) = (tanh(decoder.lexical.hidden.weight @ f) + f) / 2, "
                "f = tanh(weights @ the source pieces' rows of encoder.embed.weight); "
                "top: softmax(decoder.output.weight @ attentional + decoder.output.bias "
                "(+ decoder.lexical.output.weight @ lexical)), best first",
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
        "lexical": None if step.lexical is None else vector_summary(step.lexical),
        "prediction": f"p = softmax(W_o h̃_t + b_o{'' if step.lexical is None else ' + W_lex l_t'})",
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
    if view["lexical"] is not None:
        console.print(_vector_lines(LEXICAL_LINE, view["lexical"]))
    console.print()
    console.print(Text(f"Next piece: {view['prediction']} over {view['vocabulary']} pieces", style="bold"))
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
