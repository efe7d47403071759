"""The torch runtime of translator.Translator: length-sorted batches through the torch model.

Search runs search.search with a search_decoder.SearchDecoder (int8 or float32 products on the
CPU; float32, or float16/bfloat16 under autocast, on a GPU), built on first use: aligning given
targets needs none. Teacher-forced attention runs the float32 model.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .batch import bucketed_batches, make_batch
from .config import CPU_PRECISIONS, GPU_DECODE_BATCH_TOKENS, GPU_STREAM_CHUNK_LINES
from .devices import search_autocast, search_precision, translation_device
from .modelfile import LoadedModel, load_model
from .search import Hypothesis, search, teacher_forced_attention
from .search_decoder import SearchDecoder
from .translator import Translator


class TorchTranslator(Translator):
    """A model loaded into torch, on the CPU or a GPU; see translator.Translator for the API."""

    runtime = "torch"

    def __init__(self, loaded: LoadedModel, precision: str, device: torch.device = torch.device("cpu")) -> None:
        super().__init__(loaded.src_tokenizer, loaded.tgt_tokenizer, loaded.model_info, precision)
        self.model = loaded.model.to(device)
        self.torch_device = device
        if device.type == "cuda":
            self.decode_batch_tokens, self.stream_chunk_lines = GPU_DECODE_BATCH_TOKENS, GPU_STREAM_CHUNK_LINES

    @property
    def device(self) -> str:  # type: ignore[override]
        return str(self.torch_device)

    @classmethod
    def from_folder(cls, directory: Path, threads: int, precision: str, device: str = "cpu") -> "TorchTranslator":
        """Load `directory` on `device` (--device) with search in `precision` (--precision, resolved there)."""
        if threads or not os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(threads or os.cpu_count() or 1)
        torch_device = translation_device(device, precision)
        return cls(load_model(directory), search_precision(precision, torch_device), torch_device)

    @cached_property
    def search_decoder(self) -> SearchDecoder:
        """The decoder steps of translation, built on first use (`align` with targets needs none).
        float16/bfloat16 run the float products under autocast (search_autocast)."""
        return SearchDecoder(self.model.decoder, self.precision if self.precision in CPU_PRECISIONS else "float32")

    def search_ids(self, encoded: Sequence[list[int] | None], beam: int, alpha: float,
                   batch_tokens: int) -> list[list[int] | None]:
        outputs: list[list[int] | None] = [None] * len(encoded)
        todo = [i for i, ids in enumerate(encoded) if ids is not None]
        lengths = [len(encoded[i]) for i in todo]  # type: ignore[arg-type]
        workers = self._batch_workers()
        groups = [[todo[g] for g in group]
                  for group in bucketed_batches(lengths, lengths, max(batch_tokens // beam, 64), workers)]

        decoder = self.search_decoder                   # built here, not by two batch threads at once

        def search_group(indices: list[int]) -> list[Hypothesis]:
            batch = make_batch([encoded[i] for i in indices]).to(self.torch_device)  # type: ignore[misc]
            with search_autocast(self.precision, self.torch_device):
                return search(self.model, batch, beam, alpha, decoder)

        for indices, hypotheses in zip(groups, self._map_batches(search_group, groups, workers)):
            for index, hyp in zip(indices, hypotheses):
                outputs[index] = hyp.token_ids
        return outputs

    def _map_batches(self, search_group: Callable[[list[int]], list[Hypothesis]],
                     groups: list[list[int]], workers: int) -> Iterable[list[Hypothesis]]:
        """search_group over each batch, in order; with several workers (threads on a CPU) and
        batches, a batch per thread, each on one core.

        Many of search's operations are too small to split across cores well: two batches at once,
        one thread each, ran beam 5 ~10% faster than one batch on two threads (2 cores, Intel Xeon).
        A sentence's translation does not depend on its batch, so the results are the same.
        """
        threads = torch.get_num_threads()
        workers = min(workers, len(groups))
        if workers < 2:
            return map(search_group, groups)
        pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
        try:
            return list(pool.map(search_group, groups))
        finally:                                        # on Ctrl-C, the batches not started are dropped
            pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(threads)              # torch's setting is process-wide: the workers' 1 stays

    def _batch_workers(self) -> int:
        """How many batches search at once: a batch per thread on a CPU, one at a time on a GPU."""
        return torch.get_num_threads() if self.torch_device.type == "cpu" else 1

    def teacher_forced(self, sources: Sequence[list[int]], targets: Sequence[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        batch = make_batch(list(sources), list(targets)).to(self.torch_device)
        weights, log_probs = teacher_forced_attention(self.model, batch)   # (pairs, tgt+1, src+1), (pairs, tgt+1)
        weights, log_probs = weights.cpu(), log_probs.cpu()
        return [(weights[row].numpy(), log_probs[row].numpy()) for row in range(len(sources))]
