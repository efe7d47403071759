"""Greedy and beam search over a trained Seq2Seq, batched over sentences.

Free functions, not model methods: search only needs `model.encode` and a SearchDecoder's `step`
and `logits` (search_decoder.py; int8 or float32 products). Sentences that
are finished leave the batch, so the tensors shrink as decoding goes on. Every hypothesis ends in
EOS; a sentence that reaches its length limit is forced to end there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .batch import Batch
from .model import Seq2Seq
from .search_decoder import SearchDecoder
from .scoring import LENGTH_SLACK, MAX_LENGTH_RATIO, normalize
from .tokenizer import BOS_ID, EOS_ID


@dataclass
class Hypothesis:
    token_ids: list[int]   # output pieces, without BOS and EOS
    score: float           # sum of log-probabilities of the pieces and the final EOS
    normalized_score: float  # score / (pieces + 1) ** length_penalty: what beam search ranks by


def length_limits(src_lengths: Tensor) -> Tensor:
    """Maximum output pieces per sentence (scoring.length_limit of each source length)."""
    return (src_lengths.float() * MAX_LENGTH_RATIO).long() + LENGTH_SLACK


def _force_eos_at_limit(scores: Tensor, at_limit: Tensor) -> Tensor:
    """A copy of scores (rows, vocab) where rows at their length limit (at_limit (rows,) bool) may only choose EOS."""
    eos_column = scores[:, EOS_ID].clone()
    scores = scores.masked_fill(at_limit[:, None], float("-inf"))
    scores[:, EOS_ID] = eos_column
    return scores


def top_k(scores: Tensor, k: int, chunk: int = 64) -> tuple[Tensor, Tensor]:
    """`scores.topk(k, dim=-1)` for wide rows, about 4x faster on a CPU; same values and ids.

    scores (rows, vocab). torch's CPU topk partially sorts every row (~10 µs for 8k columns);
    instead, split each row into chunks, keep the k chunks with the largest maxima (every one of
    the k best entries lies in one of them) and take the top k of those k * chunk candidates.
    """
    if k == 1:
        return scores.max(dim=-1, keepdim=True)                 # one reading pass
    rows, width = scores.shape
    num_chunks = width // chunk
    if num_chunks < 4 * k or scores.is_cuda:                    # narrow rows, or a GPU's own topk: nothing to gain
        return scores.topk(k, dim=-1)
    whole = num_chunks * chunk
    chunked = scores[:, :whole].reshape(rows, num_chunks, chunk)  # (rows, chunks, chunk), a view
    _, best_chunks = chunked.amax(dim=-1).topk(k, dim=-1)         # (rows, k)
    # Copy the k chunks of each row out of a view with a `chunk`-wide window at every offset of the
    # flat scores: index_select copies them ~5x faster than gather with an expanded index.
    row_start = torch.arange(0, rows * width, width, device=scores.device)[:, None]            # (rows, 1)
    windows = scores.contiguous().view(-1).unfold(0, chunk, 1)                                # (rows*width - chunk + 1, chunk)
    candidates = windows.index_select(0, (best_chunks * chunk + row_start).view(-1)).view(rows, k * chunk)
    if whole < width:                                            # the columns after the last whole chunk
        candidates = torch.cat([candidates, scores[:, whole:]], dim=1)
    values, positions = candidates.topk(k, dim=-1)               # (rows, k)
    slot = torch.div(positions, chunk, rounding_mode="floor")    # which of the k chunks (k: the remainder)
    ids = best_chunks.gather(1, slot.clamp(max=k - 1)) * chunk + positions % chunk
    if whole < width:
        ids = torch.where(slot < k, ids, positions - k * chunk + whole)
    return values, ids


# Row maxima within ±EXP_SAFE_MAX let exp run on the logits as they are: no term of a sum over
# fewer than 10^12 columns overflows float32 (e^60 ~ 1e26), and the largest term (≥ e^-60) is a
# normal float, so the log of the sum is as exact as with the maximum subtracted first.
EXP_SAFE_MAX = 60.0


def log_normalizer_(logits: Tensor, row_max: Tensor | None = None) -> Tensor:
    """logsumexp over the last dimension, (rows, vocab) -> (rows, 1), overwriting `logits`.

    Working in place spares the allocation of a (rows, vocab) temporary per step: fresh large
    allocations fault in new pages, which made torch.logsumexp half as fast here. `row_max`
    (rows, 1), each row's largest logit where the caller knows it already, spares a reading pass;
    when every row's maximum is moderate (the usual case) subtracting it is skipped too.
    """
    if row_max is None:
        row_max = logits.amax(dim=-1, keepdim=True)               # (rows, 1)
    if bool(row_max.abs().max() <= EXP_SAFE_MAX):
        return logits.exp_().sum(dim=-1, keepdim=True).log_()
    return logits.sub_(row_max).exp_().sum(dim=-1, keepdim=True).log_().add_(row_max)


def top_log_probs(logits: Tensor, at_limit: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k most probable next pieces of each row and their log-probabilities; consumes `logits`.

    logits (rows, vocab), overwritten. log_softmax keeps each row's order, so the top pieces come
    from the raw logits and only those k values are normalised, instead of writing normalised
    copies of every row. Rows at their length limit may only choose EOS (its true log-probability).
    Returns (rows, k) log-probs and ids.
    """
    forced = bool(at_limit.any())
    top_logits, top_ids = top_k(_force_eos_at_limit(logits, at_limit) if forced else logits, k)
    row_max = None if forced else top_logits[:, :1]               # the best logit is the row's maximum
    return top_logits - log_normalizer_(logits, row_max), top_ids


# Rows of attentional states turned into logits at a time. A (rows, vocab) slice of 512 x 8k
# floats (16 MB) stays in cache while top_log_probs reads it three more times; all rows at once
# (~2,500 x 8k, 80 MB) went to memory and back: the output stage took 105 ms a step instead of 72.
OUTPUT_ROWS_PER_SLICE = 512


def top_log_probs_by_rows(output_layer: Callable[[Tensor], Tensor], features: Tensor, at_limit: Tensor,
                          k: int, rows_per_slice: int = OUTPUT_ROWS_PER_SLICE) -> tuple[Tensor, Tensor]:
    """top_log_probs of `output_layer(features)`, computed a slice of rows at a time.

    output_layer maps (rows, features) to float32 logits (rows, vocab); features (rows, features):
    h̃, or [h̃; l] with the lexical model; at_limit (rows,) bool. Returns (rows, k) log-probs and
    ids, the same as for all rows at once.
    """
    rows = features.size(0)
    if rows <= rows_per_slice:
        return top_log_probs(output_layer(features), at_limit, k)
    log_probs = features.new_empty((rows, k), dtype=torch.float32)
    ids = torch.empty((rows, k), dtype=torch.long, device=features.device)
    for start in range(0, rows, rows_per_slice):
        end = min(start + rows_per_slice, rows)
        log_probs[start:end], ids[start:end] = top_log_probs(output_layer(features[start:end]), at_limit[start:end], k)
    return log_probs, ids


@torch.inference_mode()
def greedy_search(model: Seq2Seq, batch: Batch, length_penalty: float = 1.0,
                  decoder: SearchDecoder | None = None) -> list[Hypothesis]:
    """The most probable next piece at every step, until EOS.

    `decoder` runs the decoder steps (search_decoder.py); by default the model's float32 arithmetic.
    """
    decoder = decoder or SearchDecoder(model.decoder, "float32")
    encoded = decoder.prepare(model.encode(batch.src_ids, batch.src_lengths))
    state = decoder.initial_state(encoded)
    limits = length_limits(batch.src_lengths)
    num_sentences, device = batch.src_ids.size(0), batch.src_ids.device
    active = torch.arange(num_sentences, device=device)      # original index of each live row
    prev = torch.full((num_sentences,), BOS_ID, dtype=torch.long, device=device)
    scores = torch.zeros(num_sentences, device=device)
    tokens: list[list[int]] = [[] for _ in range(num_sentences)]
    results: list[Hypothesis | None] = [None] * num_sentences
    step = 0
    while active.numel():
        features, state = decoder.step(prev, state, encoded)                     # (rows, features)
        best_log_probs, best = top_log_probs_by_rows(decoder.logits, features, limits[active] == step, 1)
        best_log_probs, best = best_log_probs[:, 0], best[:, 0]                # (rows,)
        scores[active] += best_log_probs
        finished = best == EOS_ID
        for index, ended, piece in zip(active.tolist(), finished.tolist(), best.tolist()):   # one copy from a GPU
            if ended:
                score = float(scores[index])
                results[index] = Hypothesis(tokens[index], score, normalize(score, len(tokens[index]), length_penalty))
            else:
                tokens[index].append(piece)
        if bool(finished.any()):
            keep = (~finished).nonzero().squeeze(1)
            active, best = active[keep], best[keep]
            encoded, state = encoded.select(keep), state.select(keep)
        prev = best
        step += 1
    return results  # type: ignore[return-value]


@torch.inference_mode()
def beam_search(model: Seq2Seq, batch: Batch, beam_size: int = 5, length_penalty: float = 1.0,
                decoder: SearchDecoder | None = None) -> list[Hypothesis]:
    """Beam search with length normalisation; beam_size 1 is greedy search.

    Each step takes the 2*beam best extensions of each sentence; those ending in EOS among the
    first `beam` are finished hypotheses, and the best `beam` others stay alive (as in fairseq).
    A sentence is done when it holds `beam` finished hypotheses; its rows leave the batch.
    The first step runs one row per sentence: its k hypotheses would all be BOS in the same state.
    """
    k = beam_size
    width = min(2 * k, model.config.tgt_vocab_size)
    decoder = decoder or SearchDecoder(model.decoder, "float32")
    num_sentences, device = batch.src_ids.size(0), batch.src_ids.device
    encoded = decoder.prepare(model.encode(batch.src_ids, batch.src_lengths))  # one entry per sentence
    sentence_of_block = torch.arange(num_sentences, device=device)  # original index of each live block of rows
    state = decoder.initial_state(encoded)                     # (sentences, ...): one row per block at first
    limits = length_limits(batch.src_lengths)
    scores = torch.zeros((num_sentences, 1), device=device)    # (blocks, rows per block)
    prev = torch.full((num_sentences,), BOS_ID, dtype=torch.long, device=device)
    history = torch.empty((num_sentences, 0), dtype=torch.long, device=device)   # (rows, step) pieces so far
    finished: list[list[Hypothesis]] = [[] for _ in range(num_sentences)]
    step = 0
    while sentence_of_block.numel():
        blocks, rows_per_block = scores.shape                                      # rows_per_block: 1, then k
        features, state = decoder.step(prev, state, encoded, rows_per_block)       # (blocks*rows_per_block, features)
        at_limit = (limits[sentence_of_block] == step).repeat_interleave(rows_per_block)
        # The best 2k extensions of a sentence are among the best 2k of each of its rows.
        row_log_probs, row_tokens = top_log_probs_by_rows(decoder.logits, features, at_limit, width)  # (rows, 2k)
        candidates = (scores[:, :, None] + row_log_probs.view(blocks, rows_per_block, width)).view(blocks, -1)
        top_scores, top_index = candidates.topk(width, dim=-1)                     # (blocks, 2k)
        origin_beam = torch.div(top_index, width, rounding_mode="floor")           # (blocks, 2k)
        token = row_tokens.view(blocks, -1).gather(1, top_index)
        is_eos = token == EOS_ID
        # 1. EOS among the first k candidates: a finished hypothesis.
        newly_finished = is_eos[:, :k] & torch.isfinite(top_scores[:, :k])
        sentences = sentence_of_block.tolist()
        finished_at = newly_finished.nonzero().tolist()
        if finished_at:                                          # one copy of each tensor, not one per hypothesis
            origin_lists, score_lists = origin_beam.tolist(), top_scores.tolist()
            rows = [block * rows_per_block + origin_lists[block][position] for block, position in finished_at]
            histories = history.index_select(0, torch.tensor(rows, device=device)).tolist()
            for (block, position), pieces in zip(finished_at, histories):
                score = score_lists[block][position]
                finished[sentences[block]].append(Hypothesis(pieces, score, normalize(score, len(pieces), length_penalty)))
        # 2. The best k candidates that do not end in EOS stay alive (there are always k of them).
        alive = torch.sort(is_eos.int(), dim=1, stable=True).indices[:, :k]     # (blocks, k)
        scores = top_scores.gather(1, alive)
        origin_rows = (torch.arange(blocks, device=device)[:, None] * rows_per_block + origin_beam.gather(1, alive)).view(-1)
        prev = token.gather(1, alive).view(-1)                                   # (blocks*k,)
        history = torch.cat([history.index_select(0, origin_rows), prev[:, None]], dim=1)
        state = state.select(origin_rows)
        # 3. Sentences with k finished hypotheses leave the batch.
        done = torch.tensor([len(finished[s]) >= k for s in sentences], device=device)
        done |= limits[sentence_of_block] <= step                # the limit step forced EOS everywhere
        if bool(done.any()):
            keep_blocks = (~done).nonzero().squeeze(1)
            keep_rows = (keep_blocks[:, None] * k + torch.arange(k, device=device)[None, :]).view(-1)
            sentence_of_block, scores = sentence_of_block[keep_blocks], scores[keep_blocks]
            prev, history = prev[keep_rows], history[keep_rows]
            encoded, state = encoded.select(keep_blocks), state.select(keep_rows)
        step += 1
    return [max(hyps, key=lambda h: h.normalized_score) for hyps in finished]


def search(model: Seq2Seq, batch: Batch, beam_size: int, length_penalty: float,
           decoder: SearchDecoder | None = None) -> list[Hypothesis]:
    """Greedy search for beam 1 (cheaper bookkeeping, same result), beam search otherwise."""
    if beam_size == 1:
        return greedy_search(model, batch, length_penalty, decoder)
    return beam_search(model, batch, beam_size, length_penalty, decoder)


@torch.inference_mode()
def teacher_forced_attention(model: Seq2Seq, batch: Batch) -> tuple[Tensor, Tensor]:
    """Attention and per-piece log-probabilities of given targets.

    Returns weights (batch, tgt_len + 1, src_len) — row t is the attention used to predict
    piece t (the last row predicts EOS) — and log_probs (batch, tgt_len + 1) of the gold pieces.
    """
    assert batch.tgt_in is not None and batch.tgt_out is not None
    logits, weights = model(batch.src_ids, batch.src_lengths, batch.tgt_in)
    log_probs = torch.log_softmax(logits.float(), dim=-1).gather(2, batch.tgt_out[:, :, None]).squeeze(2)
    return weights.float(), log_probs
