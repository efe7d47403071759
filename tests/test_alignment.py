"""Word alignments from attention, and the AER scorer, on hand-worked examples."""

import numpy as np
import pytest

from attncli.alignment import merge_pieces, parse_pharaoh, score_alignments, word_alignment
from attncli.errors import CorpusError


def test_parse_pharaoh_sure_and_possible():
    sure, possible = parse_pharaoh("0-0 1p2 3?4")
    assert sure == {(0, 0)} and possible == {(0, 0), (1, 2), (3, 4)}
    with pytest.raises(CorpusError):
        parse_pharaoh("0-0 x")


@pytest.mark.parametrize("gold,hyp,expected", [
    # one sentence: S={0-0}, P={0-0,1-1}; A={0-0,1-1,2-2}: |A∩S|=1, |A∩P|=2, AER = 1 - 3/4
    (["0-0 1p1"], [{(0, 0), (1, 1), (2, 2)}], (0.25, 2 / 3, 1.0)),
    # A = S exactly: AER 0
    (["0-0 1-1 2p2"], [{(0, 0), (1, 1)}], (0.0, 1.0, 1.0)),
    # only possible links predicted: precision 1, recall 0, AER = 1 - 1/(1+1)
    (["0-0 1p1"], [{(1, 1)}], (0.5, 1.0, 0.0)),
    # summed over sentences, not averaged
    (["0-0", "0-0 1-1"], [{(0, 0)}, {(0, 1)}], (1 - 2 / 5, 0.5, 1 / 3)),
])
def test_aer_hand_computed(gold, hyp, expected):
    score = score_alignments([parse_pharaoh(line) for line in gold], hyp)
    assert (score.aer, score.precision, score.recall) == pytest.approx(expected)


def test_gold_against_itself_is_zero_and_empty_hypothesis_is_one():
    gold = [parse_pharaoh(line) for line in ["0-0 1-1 2p1", "0-1 1p0 2-2"]]
    assert score_alignments(gold, [sure for sure, _ in gold]).aer == 0.0
    assert score_alignments(gold, [set(), set()]).aer == 1.0


def test_merge_sums_source_pieces_and_averages_target_pieces():
    # source words: w0 = pieces 0,1 ; w1 = piece 2 ; then EOS column. target words: v0 = piece 0, v1 = pieces 1,2
    pieces = np.array([[0.1, 0.2, 0.6, 0.1],
                           [0.5, 0.3, 0.1, 0.1],
                           [0.0, 0.2, 0.8, 0.0]])
    words = merge_pieces(pieces, [0, 0, 1], [0, 1, 1], num_src_words=2, num_tgt_words=2)
    expected = np.array([[0.3, 0.6, 0.1],
                             [(0.8 + 0.2) / 2, (0.1 + 0.8) / 2, (0.1 + 0.0) / 2]])
    np.testing.assert_allclose(words, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(words.sum(1), np.ones(2), rtol=1e-6)


def test_links_take_the_strongest_source_word_and_respect_min_weight():
    pieces = np.array([[0.7, 0.2, 0.1], [0.35, 0.4, 0.25], [0.3, 0.1, 0.6]])  # last row: EOS prediction
    alignment = word_alignment(["a", "b"], ["x", "y"], ["▁a", "▁b"], ["▁x", "▁y"], [0, 1], [0, 1], pieces, 0.0)
    assert alignment.links() == [(0, 0), (1, 1)]
    assert alignment.links(min_weight=0.5) == [(0, 0)]
    # Shift 1 explains each word by the next row: x by [0.35, 0.4] (b), y by the EOS row [0.3, 0.1] (a).
    # links() are sorted (source, target) pairs.
    shifted = word_alignment(["a", "b"], ["x", "y"], ["▁a", "▁b"], ["▁x", "▁y"], [0, 1], [0, 1], pieces, 0.0,
                             attention_shift=1)
    np.testing.assert_allclose(shifted.word_weights, pieces[1:], rtol=1e-6)
    assert shifted.links() == [(0, 1), (1, 0)]
    assert shifted.links(min_weight=0.35) == [(1, 0)]


def test_alignment_of_a_real_model_maps_every_word(translator):
    alignment = translator.align("Tom no sabe nadar.", "Tom can't swim.")
    assert alignment.word_weights.shape == (3, 5)
    np.testing.assert_allclose(alignment.word_weights.sum(1), np.ones(3), atol=1e-5)
    assert all(0 <= i < 4 and 0 <= j < 3 for i, j in alignment.links())


def test_mutual_links_keep_only_links_strongest_from_both_sides():
    # target words x, y both attend most to source a; a gives the larger share to x; b is left to y's second choice
    pieces = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]])
    alignment = word_alignment(["a", "b"], ["x", "y"], ["▁a", "▁b"], ["▁x", "▁y"], [0, 1], [0, 1], pieces, 0.0)
    assert alignment.links() == [(0, 0), (0, 1)]
    assert alignment.links(mutual=True) == [(0, 0)]


def test_link_settings_tuned_for_a_model_are_its_defaults(run_cli, tiny_model_dir, corpus_files, tmp_path):
    import shutil

    from attncli.modelfile import store_link_defaults

    model = tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, model)
    dev = corpus_files[1]

    def links(*options):
        result = run_cli(["inspect", "alignment", "--file", dev, "-m", model, "--format", "pharaoh", *options])
        assert result.exit_code == 0, result.stderr
        return result.stdout

    plain = links()
    strict = links("--min-weight", "0.9", "--mutual")
    assert strict != plain            # the tiny model's attention is diffuse: few links survive
    store_link_defaults(model, min_weight=0.9, mutual=True, attention_shift=0, measured={"aer": 0.5})
    assert links() == strict
    assert links("--min-weight", "0", "--no-mutual") == plain    # options still win over the model's
    assert run_cli(["translate", "Hola.", "-m", model]).exit_code == 0   # the model still loads
