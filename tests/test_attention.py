"""The attention module does exactly the five steps of the design note, and masks padding."""

import math

import pytest
import torch

from attncli.attention import LuongDotAttention
from attncli.config import ModelConfig
from attncli.model import Seq2Seq


def test_five_steps_by_hand():
    attention = LuongDotAttention(hidden_size=2)
    with torch.no_grad():
        attention.combine.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]]))
    query = torch.tensor([[[1.0, 0.0]]])                        # h_t
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]])  # h̄_1..3
    mask = torch.tensor([[True, True, True]])
    attentional, weights = attention(query, memory, mask)
    scores = [1.0, 0.0, 2.0]                                   # (1) dot products
    total = sum(math.exp(s) for s in scores)
    expected_weights = [math.exp(s) / total for s in scores]   # (2) softmax
    context = [expected_weights[0] * 1 + expected_weights[2] * 2, expected_weights[1]]  # (3) weighted sum
    concat = context + [1.0, 0.0]                              # (4) [c_t; h_t]
    expected = [math.tanh(concat[0] + concat[3]), math.tanh(concat[1] + concat[2])]  # (5) tanh(W_c [c; h])
    assert weights[0, 0].tolist() == pytest.approx(expected_weights, abs=1e-6)
    assert attentional[0, 0].tolist() == pytest.approx(expected, abs=1e-6)


def test_padding_gets_exactly_zero_and_rows_sum_to_one():
    torch.manual_seed(0)
    attention = LuongDotAttention(hidden_size=8)
    query = torch.randn(2, 4, 8)
    memory = torch.randn(2, 5, 8)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    out, weights = attention(query, memory, mask)
    assert torch.all(weights[0, :, 3:] == 0.0)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4))
    poisoned = memory.clone()
    poisoned[0, 3:] = 100.0                                    # padding content must not matter
    out2, weights2 = attention(query, poisoned, mask)
    assert torch.equal(out[0], out2[0]) and torch.equal(weights[0], weights2[0])


@pytest.mark.parametrize("input_feeding", [False, True])
def test_one_search_step_equals_the_same_position_of_the_full_sequence(input_feeding):
    """Search's decoder step (search_decoder.py) against the teacher-forced forward of training."""
    from attncli.search_decoder import SearchDecoder

    torch.manual_seed(1)
    model = Seq2Seq(ModelConfig(src_vocab_size=20, tgt_vocab_size=20, embed_size=8, hidden_size=8,
                                input_feeding=input_feeding)).eval()
    src = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0]])
    lengths = torch.tensor([4, 3])
    tgt_in = torch.tensor([[2, 10, 11], [2, 12, 13]])
    with torch.no_grad():
        encoded = model.encode(src, lengths)
        full, full_weights = model.decoder(tgt_in, encoded)
        decoder = SearchDecoder(model.decoder, "float32")
        encoded = decoder.prepare(encoded)
        state = decoder.initial_state(encoded)
        for t in range(tgt_in.size(1)):
            attentional, state = decoder.step(tgt_in[:, t], state, encoded)
            assert torch.allclose(attentional, full[:, t], atol=1e-5)
            assert torch.allclose(decoder.logits(attentional), model.decoder.logits(full[:, t]), atol=1e-5)
    assert torch.all(full_weights[1, :, 3] == 0.0)             # the padded source position


def test_padding_in_the_batch_does_not_change_a_sentence():
    torch.manual_seed(2)
    model = Seq2Seq(ModelConfig(src_vocab_size=20, tgt_vocab_size=20, embed_size=8, hidden_size=8)).eval()
    with torch.no_grad():
        alone, _ = model(torch.tensor([[8, 9, 3]]), torch.tensor([3]), torch.tensor([[2, 12, 13]]))
        batched, _ = model(torch.tensor([[5, 6, 7, 4, 3], [8, 9, 3, 0, 0]]), torch.tensor([5, 3]),
                           torch.tensor([[2, 10, 11], [2, 12, 13]]))
    assert torch.allclose(alone[0], batched[1], atol=1e-5)
