"""What `inspect history` shows besides its curves (plots.py): the validations as a table, and the
watched sentences' attention as it formed (a time-lapse of alignment tables, drawn by render.py
as `inspect alignment` draws them), as text and as JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .alignment import AlignmentScore, score_alignments
from .history import RECORD_NUMBERS
from .render import alignment_table, legend
from .watch import DECIMALS

if TYPE_CHECKING:
    from .history import TrainingHistory

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
