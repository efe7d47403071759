"""Search: beam 1 is greedy, beam never loses to greedy, scores are the model's log-probabilities."""

import pytest

from attncli.batch import make_batch
from attncli.search import beam_search, greedy_search, teacher_forced_attention

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
