"""Search: hand-worked cases on a scripted model (greedy misses what beam 2 finds, beam 1 is
greedy, the length penalty picks the winner), in torch and in the NumPy runtime; and on a real
model, scores are the model's log-probabilities."""

import math
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from attncli import torch_runtime
from attncli.batch import make_batch
from attncli.numpy_runtime import beam_search_one
from attncli.search import beam_search, greedy_search, search, teacher_forced_attention, top_k, top_log_probs
from attncli.tokenizer import BOS_ID, EOS_ID

SENTENCES = ["Tengo hambre.", "¿Dónde está el perro?", "Tom no sabe nadar.", "Me gusta la música.",
             "Ella vive en Madrid con su madre.", "No.", "¿Qué hora es?", "Quiero comer algo ahora mismo."]


@pytest.fixture(scope="module")
def batch(translator):
    return make_batch([translator.src_tokenizer.encode(s) for s in SENTENCES])


# A scripted model: the probability of each next piece given the pieces so far, one script per
# sentence; after a prefix a script does not list, EOS has probability 1. Pieces 4-7 are A-D.
A, B, C, D = 4, 5, 6, 7
VOCAB_SIZE = 8

# Greedy takes A (0.5 > 0.4), then C: A C scores 0.5 * 0.35 = 0.175. Beam 2 keeps B alive and
# finds B EOS, 0.4 * 0.9 = 0.36, the better sequence with or without length normalisation.
GREEDY_MISSES = {(): {A: 0.5, B: 0.4, EOS_ID: 0.1},
                 (A,): {C: 0.35, D: 0.33, EOS_ID: 0.32},
                 (B,): {EOS_ID: 0.9, C: 0.1}}
# Beam 2 finishes B (0.4 * 0.8 = 0.32), A C (0.5 * 0.6 = 0.30) and A D (0.125). By total
# log-probability B wins (ln 0.32 = -1.139 > ln 0.30 = -1.204); divided by length (pieces + EOS),
# A C wins: -1.204 / 3 = -0.401 > -1.139 / 2 = -0.570.
LENGTH_DECIDES = {(): {A: 0.5, B: 0.4, EOS_ID: 0.1},
                  (A,): {C: 0.6, D: 0.25, EOS_ID: 0.15},
                  (B,): {EOS_ID: 0.8, C: 0.2}}
# EOS first: the empty translation, whatever the beam.
EMPTY = {(): {EOS_ID: 0.9, A: 0.06, B: 0.04}}
# Beam 2, step 2: A C (0.30) is best, B EOS (0.28) second: an EOS among the best `beam` finishes
# B. Step 3: A D EOS (0.20) finishes, before A C D (0.18): done. B wins by total log-probability,
# A D after length normalisation (-1.609 / 3 = -0.536 > -1.273 / 2 = -0.637). Greedy: A C D.
SECOND_EOS = {(): {A: 0.5, B: 0.4, EOS_ID: 0.1},
              (A,): {C: 0.6, D: 0.4},
              (B,): {EOS_ID: 0.7, C: 0.3},
              (A, C): {D: 0.6, EOS_ID: 0.4}}
SCRIPTS = [GREEDY_MISSES, LENGTH_DECIDES, EMPTY, SECOND_EOS]


def scripted_log_probs(script: dict, pieces: tuple) -> np.ndarray:
    """log P(next piece | pieces) over the vocabulary; -inf for pieces the script does not allow."""
    row = np.full(VOCAB_SIZE, -np.inf, np.float32)
    for piece, probability in script.get(pieces, {EOS_ID: 1.0}).items():
        row[piece] = math.log(probability)
    return row


class Rows:
    """Encoder output and decoder state in one: each row's sentence and the pieces it has read."""

    def __init__(self, sentence: torch.Tensor, read: torch.Tensor) -> None:
        self.sentence, self.read = sentence, read          # (rows,), (rows, steps)

    def select(self, index: torch.Tensor) -> "Rows":
        return Rows(self.sentence[index], self.read[index])


class ScriptedDecoder:
    """search.SearchDecoder's interface; `attentional` carries each row's sentence and pieces read."""

    def prepare(self, encoded: Rows) -> Rows:
        return encoded

    def initial_state(self, encoded: Rows) -> Rows:
        return encoded

    def step(self, prev: torch.Tensor, state: Rows, encoded: Rows, beam: int = 1):
        state = Rows(state.sentence, torch.cat([state.read, prev[:, None]], dim=1))
        return torch.cat([state.sentence[:, None], state.read], dim=1), state

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        rows = [scripted_log_probs(SCRIPTS[int(row[0])], tuple(row[2:].tolist())) for row in attentional]
        assert all(int(row[1]) == BOS_ID for row in attentional)
        return torch.from_numpy(np.stack(rows))


class ScriptedModel:
    config = SimpleNamespace(tgt_vocab_size=VOCAB_SIZE)

    def encode(self, src_ids: torch.Tensor, src_lengths: torch.Tensor) -> Rows:
        return Rows(torch.arange(src_ids.size(0)), torch.empty((src_ids.size(0), 0), dtype=torch.long))


class ScriptedNumpyModel:
    """numpy_runtime.NumpySeq2Seq's interface for beam_search_one; `attentional` holds the count of
    pieces read, then the pieces."""

    config = SimpleNamespace(hidden_size=32)

    def __init__(self, script: dict) -> None:
        self.script = script

    def encode(self, src_ids: list[int]) -> SimpleNamespace:
        return SimpleNamespace(memory=np.zeros((len(src_ids), 1), np.float32), init_h=np.zeros((1, 1), np.float32))

    def step_logits(self, prev_ids, h, c, attentional, encoded):
        attentional = attentional.copy()
        count = attentional[:, 0].astype(int)
        attentional[np.arange(len(prev_ids)), count + 1] = prev_ids
        attentional[:, 0] += 1
        logits = np.stack([scripted_log_probs(self.script, tuple(int(p) for p in row[2: 2 + int(row[0]) - 1]))
                           for row in attentional])
        return logits, h, c, attentional, None


SCRIPT_SOURCES = [[A], [B], [C], [D]]     # one (ignored) source per script; each may grow to 13 pieces


def run_scripted(beam_size: int, length_penalty: float):
    batch = make_batch(SCRIPT_SOURCES)
    if beam_size == 0:
        return greedy_search(ScriptedModel(), batch, length_penalty, ScriptedDecoder())
    return beam_search(ScriptedModel(), batch, beam_size, length_penalty, ScriptedDecoder())


def test_greedy_takes_the_locally_best_piece_and_beam_two_finds_the_better_sequence():
    greedy = run_scripted(0, 1.0)
    assert [h.token_ids for h in greedy] == [[A, C], [A, C], [], [A, C, D]]
    assert [h.score for h in greedy] == pytest.approx([math.log(0.175), math.log(0.30), math.log(0.9), math.log(0.18)],
                                                      abs=1e-5)
    assert greedy[0].normalized_score == pytest.approx(math.log(0.175) / 3, abs=1e-5)
    for length_penalty in (0.0, 1.0):
        beam = run_scripted(2, length_penalty)
        assert beam[0].token_ids == [B] and beam[0].score == pytest.approx(math.log(0.36), abs=1e-5)
        assert beam[2].token_ids == []


def test_beam_one_is_greedy_search_on_the_scripted_model():
    greedy, beam = run_scripted(0, 1.0), run_scripted(1, 1.0)
    assert [h.token_ids for h in beam] == [h.token_ids for h in greedy] == [[A, C], [A, C], [], [A, C, D]]
    assert [h.score for h in beam] == pytest.approx([h.score for h in greedy], abs=1e-6)
    assert [h.token_ids for h in search(ScriptedModel(), make_batch(SCRIPT_SOURCES), 1, 1.0, ScriptedDecoder())] \
        == [[A, C], [A, C], [], [A, C, D]]


@pytest.mark.parametrize("length_penalty,winner", [(0.0, [B]), (0.5, [A, C]), (1.0, [A, C])])
def test_the_length_penalty_picks_the_winner(length_penalty, winner):
    # alpha 0.5: B -1.139 / 2 ** 0.5 = -0.806 < A C -1.204 / 3 ** 0.5 = -0.695
    best = run_scripted(2, length_penalty)[1]
    assert best.token_ids == winner
    expected = math.log(0.32) if winner == [B] else math.log(0.30)
    assert best.score == pytest.approx(expected, abs=1e-5)
    assert best.normalized_score == pytest.approx(expected / (len(winner) + 1) ** length_penalty, abs=1e-5)


@pytest.mark.parametrize("beam_size,length_penalty,expected", [
    (1, 1.0, [[A, C], [A, C], [], [A, C, D]]),
    (2, 1.0, [[B], [A, C], [], [A, D]]),
    (2, 0.0, [[B], [B], [], [B]]),
    (3, 0.0, [[B], [B], [], [B]]),
])
def test_the_numpy_runtime_search_finds_the_same_sequences(beam_size, length_penalty, expected):
    found = [beam_search_one(ScriptedNumpyModel(script), source + [EOS_ID], beam_size, length_penalty)
             for script, source in zip(SCRIPTS, SCRIPT_SOURCES)]
    assert found == expected
    torch_found = [h.token_ids for h in run_scripted(beam_size, length_penalty)]
    assert torch_found == expected


def test_beam_one_equals_greedy(translator, batch):
    greedy = greedy_search(translator.model, batch)
    beam = beam_search(translator.model, batch, beam_size=1)
    for g, b in zip(greedy, beam):
        assert g.token_ids == b.token_ids
        assert g.score == pytest.approx(b.score, abs=1e-4)


def test_hypothesis_score_is_the_teacher_forced_log_probability(translator, batch):
    hypotheses = beam_search(translator.model, batch, beam_size=3)
    forced = make_batch([translator.src_tokenizer.encode(s) for s in SENTENCES], [h.token_ids for h in hypotheses])
    _, log_probs = teacher_forced_attention(translator.model, forced)
    for row, hyp in enumerate(hypotheses):
        assert float(log_probs[row, : len(hyp.token_ids) + 1].sum()) == pytest.approx(hyp.score, abs=1e-3)


def test_batched_translation_equals_one_by_one(translator):
    together = translator.translate(SENTENCES, beam_size=4)
    alone = [translator.translate([s], beam_size=4)[0] for s in SENTENCES]
    assert together == alone


def test_batches_on_two_threads_translate_as_on_one(translator, monkeypatch):
    """With two threads, small batches run a batch per thread (torch_runtime._map_batches): same
    translations, in the input's order, and the thread setting is restored afterwards."""
    sentences = SENTENCES * 3
    one_thread = translator.translate(sentences, beam_size=3, batch_tokens=30)
    calls = []
    monkeypatch.setattr(torch_runtime, "ThreadPoolExecutor",
                        lambda *args, **kwargs: calls.append(args) or ThreadPoolExecutor(*args, **kwargs))
    torch.set_num_threads(2)
    assert translator.translate(sentences, beam_size=3, batch_tokens=30) == one_thread
    assert calls == [(2,)]                                    # several batches, so the pool ran them
    assert torch.get_num_threads() == 2


def test_blank_lines_stay_lines(translator):
    assert translator.translate(["Hola.", "", "   ", "Adiós."], beam_size=2)[1:3] == ["", ""]


@pytest.mark.parametrize("vocab", [50, 3000])      # plain topk, and the chunked one
@pytest.mark.parametrize("scale", [4.0, 100.0])    # exp of the logits as they are; of logits minus their maximum
def test_top_log_probs_are_the_top_of_log_softmax(vocab, scale):
    torch.manual_seed(0)
    logits = torch.randn(6, vocab) * scale
    at_limit = torch.tensor([False, True, False, False, True, False])
    log_probs = torch.log_softmax(logits, dim=-1)
    values, ids = top_log_probs(logits.clone(), at_limit, 4)
    expected_values, expected_ids = log_probs.topk(4, dim=-1)
    free = ~at_limit
    assert torch.equal(ids[free], expected_ids[free])
    torch.testing.assert_close(values[free], expected_values[free])
    # A row at its length limit offers EOS, with its true log-probability, and nothing else.
    assert (ids[at_limit, 0] == EOS_ID).all()
    torch.testing.assert_close(values[at_limit, 0], log_probs[at_limit, EOS_ID])
    assert torch.isinf(values[at_limit, 1:]).all()


@pytest.mark.parametrize("width", [8000, 8013, 640])   # whole chunks, a remainder, narrow (plain topk)
def test_chunked_top_k_equals_topk(width):
    torch.manual_seed(1)
    scores = torch.randn(300, width)
    scores[0, :] = 0.0                                   # a row of ties still gives k distinct ids
    scores[1, -5:] += 10.0                               # winners in the remainder columns
    scores[2, :10] += 10.0                               # winners all in the first chunk
    values, ids = top_k(scores, 10)
    expected_values, expected_ids = scores.topk(10, dim=-1)
    assert torch.equal(values, expected_values)
    assert torch.equal(ids[1:], expected_ids[1:])
    assert ids[0].unique().numel() == 10
