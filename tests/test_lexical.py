"""--lexical-model (lexical.py): Nguyen & Chiang's lexical model beside Luong's attention."""

from __future__ import annotations

import torch

from attncli.config import ModelConfig
from attncli.model import Seq2Seq
from attncli.tokenizer import BOS_ID


def tiny_lexical_model(tied: bool) -> Seq2Seq:
    torch.manual_seed(3)
    config = ModelConfig(src_vocab_size=40, tgt_vocab_size=50, embed_size=16 if tied else 12, hidden_size=16,
                         tied_output=tied, lexical_model=True)
    return Seq2Seq(config).eval()


def test_features_follow_the_formula():
    """The output features are [h̃_t; l_t] with l_t = (tanh(W_l f_t) + f_t) / 2 and f_t =
    tanh(Σ_s a_t(s) e_s), e_s the source embeddings; padding gets no weight, so its embedding
    never enters; the logits are W_o h̃_t + b_o + W_lex l_t."""
    model = tiny_lexical_model(tied=True)
    src = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0]])                 # the second row ends in padding
    lengths = torch.tensor([4, 2])
    tgt_in = torch.tensor([[BOS_ID, 9, 10], [BOS_ID, 11, 12]])
    with torch.no_grad():
        encoded = model.encode(src, lengths)
        features, weights = model.decoder(tgt_in, encoded)           # (2, 3, 16 + 16), (2, 3, 4)
        embedded = model.encoder.embed(src)                          # (2, 4, 16)
        averaged = torch.tanh(weights @ embedded)
        lexical = (torch.tanh(averaged @ model.decoder.lexical.hidden.weight.T) + averaged) / 2
        assert torch.allclose(features[..., 16:], lexical, atol=1e-6)
        assert float(weights[1, :, 2:].abs().max()) == 0.0
        logits = model.decoder.logits(features)
        expected = (features[..., :16] @ model.decoder.output.weight.T + model.decoder.output.bias
                    + lexical @ model.decoder.lexical.output.weight.T)
        assert torch.allclose(logits, expected, atol=1e-5)
    assert float(features.abs().max()) <= 1.0                        # the int8 output product's input range


def test_the_source_embeddings_reach_the_output_through_it():
    """Changing one source word's embedding changes the lexical features of every step in
    proportion to that word's attention; without the lexical model only h̃ remains."""
    model = tiny_lexical_model(tied=False)
    src, lengths, tgt_in = torch.tensor([[5, 6, 3]]), torch.tensor([3]), torch.tensor([[BOS_ID, 9]])
    with torch.no_grad():
        before, _ = model.decoder(tgt_in, model.encode(src, lengths))
        model.encoder.embed.weight[6] += 1.0
        encoded = model.encode(src, lengths)
        after, _ = model.decoder(tgt_in, encoded)
        assert before.shape[-1] == 16 + 12
        assert not torch.allclose(before[..., 16:], after[..., 16:])
        plain = Seq2Seq(ModelConfig(src_vocab_size=40, tgt_vocab_size=50, embed_size=12, hidden_size=16)).eval()
        assert plain.decoder(tgt_in, plain.encode(src, lengths))[0].shape[-1] == 16
