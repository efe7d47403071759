"""When training stops: the reasons (`StopReason`) and the Ctrl-C/SIGTERM handling (`StopRequests`)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from enum import Enum
from typing import Iterator, Sequence

from .config import TrainConfig


class StopReason(Enum):
    """Why a run ended; `describe` gives the sentence the summary prints."""

    PATIENCE = "patience"          # --patience validations without improvement
    MAX_MINUTES = "max_minutes"    # the time limit; the training state is kept for --resume
    EPOCHS = "epochs"              # all --epochs done
    INTERRUPTED = "interrupted"    # Ctrl-C or SIGTERM; the training state is kept for --resume

    def describe(self, config: TrainConfig) -> str:
        return {StopReason.PATIENCE: f"no dev improvement in {config.patience} validations",
                StopReason.MAX_MINUTES: f"reached --max-minutes {config.max_minutes:g}",
                StopReason.EPOCHS: f"reached --epochs {config.epochs}",
                StopReason.INTERRUPTED: "interrupted"}[self]


class StopRequests:
    """Ctrl-C (SIGINT) and the other `signals` during training: stop at the next safe point.

    The first signal only sets `requested`; the loop raises KeyboardInterrupt at the next update
    boundary, so an update is applied entirely or not at all, and the state saved for --resume is
    exactly the state of an uninterrupted run at that update. Inside `interruptible()` (the dev
    set decoding, which changes nothing that is saved) a signal stops at once. A second signal
    also stops at once; if it lands inside `critical()` the in-memory state may be half updated,
    `consistent` turns False and that state is not saved (the one saved at the last validation
    stays). Handlers are installed only in the main thread and restored on exit.
    """

    def __init__(self, signals: Sequence[int], immediate: bool = True) -> None:
        self.signals = tuple(signals)
        self.allow_immediate = immediate    # False with several processes: they must stop at one update
        self.requested = False
        self.consistent = True
        self._immediate = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: object) -> None:
        if (self._immediate or self.requested) and self.allow_immediate:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """A safe point: stop here if a signal came in."""
        if self.requested:
            raise KeyboardInterrupt

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A section that may be abandoned midway: it changes nothing that is saved."""
        if not self.allow_immediate:
            yield
            return
        self.check()
        self._immediate = True
        try:
            yield
        finally:
            self._immediate = False

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A section that changes the saved state; being interrupted inside it tears that state."""
        try:
            yield
        except KeyboardInterrupt:
            self.consistent = False
            raise
