"""What a training run reports while it works: the one event type the library sends to its caller
(the CLI draws it on stderr; tests and benchmarks collect it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainEvent:
    """What happened: kind is "start", "data" (reading or encoding the corpus: `message` says
    which, with pairs, pairs_per_s, fraction, elapsed_s and seconds_left), "note" (the recipe
    chosen from the data), "warning" (about the data), "step", "validation" or "end"; other
    fields as they apply."""

    kind: str
    epoch: int = 0
    step: int = 0
    total_steps: int = 0          # estimated updates until the epoch limit
    loss: float = 0.0
    tokens_per_s: float = 0.0
    elapsed_s: float = 0.0
    seconds_left: float = 0.0     # estimate: the nearer of the time and epoch limits
    learning_rate: float = 0.0
    dev_loss: float = 0.0
    dev_bleu: float = 0.0
    dev_chrf: float = 0.0
    improved: bool = False
    precision: str = ""           # training arithmetic: float32 or bfloat16
    message: str = ""
    pairs: int = 0                # "data": pairs read so far
    pairs_per_s: float = 0.0
    fraction: float = 0.0         # "data": share of the file read
