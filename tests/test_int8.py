"""int8 products and the search decoder: close to float32, independent of the batch, same as NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import only_notes

from attncli.config import ModelConfig
from attncli.int8 import KERNELS, FloatLinear, Int8Linear, exact_sums, int8_kernel
from attncli.model import Seq2Seq
from attncli.numpy_runtime import Int8Weights
from attncli.search import top_log_probs, top_log_probs_by_rows
from attncli.search_decoder import SearchDecoder
from attncli.tokenizer import BOS_ID


@pytest.fixture
def layer():
    torch.manual_seed(0)
    weight, bias = torch.randn(500, 64) * 0.2, torch.randn(500)
    inputs = torch.tanh(torch.randn(40, 64) * 2)                       # in [-1, 1], as h and h̃ are
    return weight, bias, inputs


def test_int8_linear_is_close_to_float(layer):
    weight, bias, inputs = layer
    error = Int8Linear(weight, bias)(inputs) - FloatLinear(weight, bias)(inputs)
    # Each of 64 products is off by at most half a step of both factors: |x| * w_scale / 2 + |w| / 254.
    bound = 64 * (weight.abs().amax(dim=1) / 127 / 2 + weight.abs().amax(dim=1) / 254)
    assert (error.abs() <= bound).all()
    assert error.abs().mean() < 0.02


def test_int8_linear_row_does_not_depend_on_its_batch(layer):
    weight, bias, inputs = layer
    linear = Int8Linear(weight, bias)
    together = linear(inputs)
    alone = torch.cat([linear(inputs[row:row + 1]) for row in range(inputs.size(0))])
    assert torch.equal(together, alone)
    # Scaling one row of the batch by 0.1 leaves the other rows exactly as they were.
    changed = inputs.clone()
    changed[0] *= 0.1
    assert torch.equal(linear(changed)[1:], together[1:])


def reference(linear: Int8Linear, inputs: torch.Tensor) -> torch.Tensor:
    """The module's formula computed independently: float64 integer sums, float32 s, then bias."""
    sums = exact_sums(torch.round(inputs * 127.0), linear.int8_weight)
    return sums * linear.row_scale + linear.bias if linear.bias is not None else sums * linear.row_scale


@pytest.mark.parametrize("with_bias", [True, False])
def test_every_kernel_computes_the_reference_exactly(layer, with_bias):
    """Whichever kernel this CPU gets (oneDNN's VNNI or AMX product, or the emulation), the
    result is the reference formula bit for bit; which one runs is a benchmark's report."""
    weight, bias, inputs = layer
    linear = Int8Linear(weight, bias if with_bias else None)
    assert linear.kernel in KERNELS
    assert torch.equal(linear(inputs), reference(linear, inputs))


def test_emulation_computes_the_reference_exactly(layer, monkeypatch):
    """The fall-back every CPU can take, forced here even where oneDNN runs."""
    monkeypatch.setattr("attncli.int8._onednn_prepack", lambda weight: None)
    weight, bias, inputs = layer
    linear = Int8Linear(weight, bias)
    assert linear.kernel == "emulated"
    assert torch.equal(linear(inputs), reference(linear, inputs))


@pytest.mark.parametrize("wrong_when, expected_kernel", [
    ({"fused"}, "onednn-sums+bias"), ({"fused", "unfused"}, "emulated"), (set(), "onednn")])
def test_a_kernel_that_rounds_differently_is_not_taken(layer, monkeypatch, wrong_when, expected_kernel):
    """A oneDNN product one unit in the last place off (as AMX kernels were with the former
    scaling) fails the probe; search takes the next exact kernel, never a differing one. oneDNN
    is replaced by a stand-in here, so this holds on every CPU."""
    weight, bias, inputs = layer

    def stand_in(self, levels, fuse_bias):
        result = self._scale(exact_sums(levels, self.int8_weight))
        if ("fused" if fuse_bias else "unfused") in wrong_when:
            return torch.nextafter(result, torch.full_like(result, float("inf")))
        return result

    monkeypatch.setattr("attncli.int8._onednn_prepack", lambda weight: "packed")
    monkeypatch.setattr(Int8Linear, "_onednn", stand_in)
    linear = Int8Linear(weight, bias)
    assert linear.kernel == expected_kernel
    assert torch.equal(linear(inputs), reference(linear, inputs))


def test_int8_kernel_report():
    assert int8_kernel() in KERNELS


def test_numpy_int8_weights_equal_torch(layer):
    weight, bias, inputs = layer
    expected = Int8Linear(weight, bias)(inputs).numpy()
    got = Int8Weights(weight.numpy(), bias.numpy())(inputs.numpy())
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layers, input_feeding, tied, lexical", [
    (1, False, False, False), (2, False, False, False), (1, True, False, False), (2, True, True, False),
    (1, False, True, True), (2, True, False, True)])
def test_search_decoder_is_the_model_at_each_position(layers, input_feeding, tied, lexical):
    """The rearranged step (input-gate table, written-out LSTM cell, split W_c) computes what the teacher-
    forced Decoder.forward computes at the same position; int8 stays close to it."""
    torch.manual_seed(layers + 2 * input_feeding)
    config = ModelConfig(src_vocab_size=60, tgt_vocab_size=70, embed_size=24 if not tied else 32, hidden_size=32,
                         encoder_layers=layers, decoder_layers=layers, input_feeding=input_feeding, tied_output=tied,
                         lexical_model=lexical)
    model = Seq2Seq(config).eval()
    src = torch.randint(4, 60, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    tgt_in = torch.cat([torch.full((3, 1), BOS_ID), torch.randint(4, 70, (3, 4))], dim=1)
    with torch.inference_mode():
        encoded = model.encode(src, lengths)
        full, _ = model.decoder(tgt_in, encoded)                                 # (3, 5, hidden)
        decoder = SearchDecoder(model.decoder, "float32")
        encoded = decoder.prepare(encoded)
        int8_decoder = SearchDecoder(model.decoder, "int8")
        state = int8_state = decoder.initial_state(encoded)
        for t in range(tgt_in.size(1)):
            attentional, state = decoder.step(tgt_in[:, t], state, encoded)
            torch.testing.assert_close(attentional, full[:, t], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(decoder.logits(attentional), model.decoder.logits(full[:, t]), rtol=1e-5, atol=1e-5)
            int8_attentional, int8_state = int8_decoder.step(tgt_in[:, t], int8_state, encoded)
            assert (int8_decoder.logits(int8_attentional) - model.decoder.logits(full[:, t])).abs().mean() < 0.05


def test_wide_inputs_sum_exactly_in_float64():
    """Beyond 1040 inputs float32 sums of int8 products could round: the emulation uses float64."""
    torch.manual_seed(2)
    weight, inputs = torch.randn(8, 1500), torch.tanh(torch.randn(3, 1500) * 3)
    linear = Int8Linear(weight, None)
    exact = (torch.round(inputs * 127.0).double() @ linear.int8_weight.double().t()).float() * linear.row_scale
    torch.testing.assert_close(linear(inputs), exact, rtol=0, atol=0)
    np.testing.assert_array_equal(Int8Weights(weight.numpy(), None)(inputs.numpy()), linear(inputs).numpy())


def test_output_layer_by_slices_equals_all_rows_at_once():
    torch.manual_seed(3)
    weight, bias = torch.randn(300, 16), torch.randn(300)
    attentional = torch.tanh(torch.randn(50, 16))
    at_limit = torch.zeros(50, dtype=torch.bool)
    at_limit[[4, 31]] = True
    layer = FloatLinear(weight, bias)
    together = top_log_probs(layer(attentional), at_limit, 6)
    sliced = top_log_probs_by_rows(layer, attentional, at_limit, 6, rows_per_slice=7)
    assert torch.equal(sliced[1], together[1])
    torch.testing.assert_close(sliced[0], together[0], rtol=0, atol=1e-5)   # float32 sums may round per shape


def test_translator_precision(tiny_model_dir):
    from attncli.translator import Translator

    assert isinstance(Translator.load(tiny_model_dir, threads=1).search_decoder.output, Int8Linear)   # the default
    assert isinstance(Translator.load(tiny_model_dir, threads=1, precision="float32").search_decoder.output, FloatLinear)


def test_translate_precision_option(run_cli, tiny_model_dir):
    lines = "Hola.\nTengo hambre.\n".encode()
    for precision in ("int8", "float32"):
        result = run_cli(["translate", "-m", tiny_model_dir, "--precision", precision], stdin=lines)
        assert result.exit_code == 0, result.stderr
        assert len(result.stdout.splitlines()) == 2 and only_notes(result.stderr)
    result = run_cli(["translate", "-m", tiny_model_dir, "--precision", "int4"], stdin=lines)
    assert result.exit_code == 2 and "int4" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_reports_its_precision(run_cli, tiny_model_dir, corpus_files):
    import json

    for precision in ("int8", "float32"):
        result = run_cli(["evaluate", corpus_files[1], "-m", tiny_model_dir, "--json", "--precision", precision])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["precision"] == precision
