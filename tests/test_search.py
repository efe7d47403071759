"""Search: beam 1 is greedy, beam never loses to greedy, scores are the model's log-probabilities."""

import pytest
import torch

from attncli.batch import make_batch
from attncli.search import beam_search, greedy_search, teacher_forced_attention, top_k, top_log_probs
from attncli.tokenizer import EOS_ID

SENTENCES = ["Tengo hambre.", "¿Dónde está el perro?", "Tom no sabe nadar.", "Me gusta la música.",
             "Ella vive en Madrid con su madre.", "No.", "¿Qué hora es?", "Quiero comer algo ahora mismo."]


@pytest.fixture(scope="module")
def batch(translator):
    return make_batch([translator.src_tokenizer.encode(s) for s in SENTENCES])


def test_beam_one_equals_greedy(translator, batch):
    greedy = greedy_search(translator.model, batch)
    beam = beam_search(translator.model, batch, beam_size=1)
    for g, b in zip(greedy, beam):
        assert g.token_ids == b.token_ids
        assert g.score == pytest.approx(b.score, abs=1e-4)


def test_beam_never_scores_lower_than_greedy(translator, batch):
    greedy = greedy_search(translator.model, batch, length_penalty=1.0)
    for beam_size in (2, 5):
        beam = beam_search(translator.model, batch, beam_size=beam_size, length_penalty=1.0)
        for g, b in zip(greedy, beam):
            assert b.normalized_score >= g.normalized_score - 1e-5


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


def test_blank_lines_stay_lines(translator):
    assert translator.translate(["Hola.", "", "   ", "Adiós."], beam_size=2)[1:3] == ["", ""]


@pytest.mark.parametrize("vocab", [50, 3000])      # plain topk, and the chunked one
def test_top_log_probs_are_the_top_of_log_softmax(vocab):
    torch.manual_seed(0)
    logits = torch.randn(6, vocab) * 4
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
