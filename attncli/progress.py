"""Progress on stderr: training, driven by TrainEvent callbacks; and jobs of lines (translating
stdin, evaluate, inspect alignment --file), counted as their results come out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator, Optional, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

if TYPE_CHECKING:
    from .events import TrainEvent

Item = TypeVar("Item")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainingProgress:
    """Shows epoch, update, loss, tokens/s and time left; prints one line per validation."""

    def __init__(self, console: Console, log_every_s: float = 30.0, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet                       # shows nothing (the other ranks of a torchrun job)
        self.live = console.is_terminal and not quiet   # a log file gets plain status lines instead
        self.log_every_s = log_every_s
        self.last_log = -log_every_s                 # the first update is logged: training has begun
        self.last_data_log = 0.0
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TextColumn("left {task.fields[left]}"),
            console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
        self.task = self.progress.add_task("starting", total=None, stats="", left="?")

    def __enter__(self) -> "TrainingProgress":
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.progress.stop()

    def update(self, event: TrainEvent) -> None:
        if self.quiet:
            return
        if event.kind == "start":
            self.progress.update(self.task, description=event.message)
        elif event.kind == "data":
            self.show_data(event)
        elif event.kind in ("note", "warning"):
            prefix = "warning: " if event.kind == "warning" else ""
            self.console.print(f"{prefix}{event.message}", markup=False, highlight=False)
        elif event.kind == "step" and not self.live:
            if event.elapsed_s - self.last_log >= self.log_every_s:
                self.last_log = event.elapsed_s
                self.console.print(
                    f"  epoch {event.epoch} update {event.step}  loss {event.loss:.3f}  {event.tokens_per_s:,.0f} tok/s  "
                    f"lr {event.learning_rate:.2g}  {event.precision}  [{_clock(event.elapsed_s)}, left {_clock(event.seconds_left)}]",
                    markup=False, highlight=False)
        elif event.kind == "step":
            fraction = event.elapsed_s / (event.elapsed_s + event.seconds_left) if event.seconds_left or event.elapsed_s else 0
            self.progress.update(
                self.task, description=f"epoch {event.epoch} update {event.step}", total=1000,
                completed=int(1000 * fraction), left=_clock(event.seconds_left),
                stats=f"loss {event.loss:.3f}  {event.tokens_per_s:,.0f} tok/s  lr {event.learning_rate:.2g}  {event.precision}")
        elif event.kind == "validation":
            mark = "*" if event.improved else " "
            self.console.print(
                f"{mark} epoch {event.epoch:3d} update {event.step:6d}  dev loss {event.dev_loss:.3f}  "
                f"BLEU {event.dev_bleu:5.2f}  chrF {event.dev_chrf:5.2f}  [{_clock(event.elapsed_s)}]"
                + (f"  {event.message}" if event.message else ""),
                markup=False, highlight=False)


    def show_data(self, event: TrainEvent) -> None:
        """Reading or encoding the corpus: pairs, pairs/s, share of the file and time left."""
        stats = f"{event.pairs:,} pairs  {event.pairs_per_s:,.0f} pairs/s"
        if self.live:
            self.progress.update(self.task, description=event.message, total=1000, completed=int(1000 * event.fraction),
                                 stats=stats, left=_clock(event.seconds_left))
        elif event.elapsed_s - self.last_data_log >= self.log_every_s or (event.fraction >= 1.0 and event.elapsed_s >= 2):
            self.last_data_log = event.elapsed_s if event.fraction < 1.0 else 0.0   # the next pass starts its own clock
            self.console.print(f"  {event.message} {event.fraction:4.0%}  {stats}  "
                               f"[{_clock(event.elapsed_s)}, left {_clock(event.seconds_left)}]", markup=False, highlight=False)


class _LinesColumn(ProgressColumn):
    """Lines done (of the total, when known), lines per second, the time taken and, when the total
    is known, the time left."""

    def render(self, task: Task) -> Text:
        done = f"{task.completed:,.0f}" + (f"/{task.total:,.0f}" if task.total is not None else "") + " lines"
        rate = f"  {task.speed:,.0f} lines/s" if task.speed else ""
        left = f", left {_clock(task.time_remaining)}" if task.total is not None and task.time_remaining is not None else ""
        return Text(f"{done}{rate}  [{_clock(task.elapsed or 0)}{left}]")


class LineProgress:
    """A transient bar on `console` (stderr, a terminal) for a job of lines; `counted` passes its
    results through, counting each. The library only yields results; nothing here is printed
    once the job is over."""

    def __init__(self, console: Console, description: str, total: Optional[int] = None) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), _LinesColumn(), console=console,
                                 transient=True, redirect_stdout=False, redirect_stderr=False)
        self.task = self.progress.add_task(description, total=total)

    def __enter__(self):
        self.progress.start()
        return self.counted

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def counted(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            self.progress.advance(self.task)
            yield item
