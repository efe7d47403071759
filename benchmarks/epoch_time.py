"""Seconds per update over one epoch of `attncli.training.train`, the data already prepared.

Prints one line: `s_per_update=X updates=N`. Run it with PYTHONPATH pointing at the attncli tree
to measure (benchmarks/large_corpus.py compares two trees, one run of each in turn):

    PYTHONPATH=. .venv/bin/python benchmarks/epoch_time.py TRAIN.tsv DEV.tsv
"""

from __future__ import annotations

import inspect
import sys
import tempfile
import time
from pathlib import Path

from attncli.config import TrainConfig
from attncli.training import train


def main() -> None:
    corpus, dev = sys.argv[1], sys.argv[2]
    times: dict[int, float] = {}

    def on_event(event) -> None:
        if event.kind == "step":
            times[event.step] = time.monotonic()

    config = TrainConfig(train_precision="float32", epochs=1, valid_every=1_000_000, threads=2, vocab_size=8000,
                         batch_tokens=4096, dropout=0.2, tied_output=False, warmup_steps=400, lexical_model=False)
    folder = Path(tempfile.mkdtemp(prefix="attncli-epoch-"))
    options = {"cache_dir": folder / "cache"} if "cache_dir" in inspect.signature(train).parameters else {}
    train(corpus, dev, folder / "model", config, on_event=on_event, **options)
    first, last = min(times), max(times)
    print(f"s_per_update={(times[last] - times[first]) / (last - first):.4f} updates={last - first}")


if __name__ == "__main__":
    main()
