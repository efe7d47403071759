"""The chunked output layer + label-smoothed cross-entropy (loss.output_cross_entropy) and the 16-bit dropout mask."""

import pytest
import torch
import torch.nn.functional as F

from attncli import loss as loss_module
from attncli.dropout import Dropout, dropout_mask
from attncli.loss import output_cross_entropy


def _inputs(bias: bool, tokens: int = 300, features: int = 48, vocab: int = 200):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, features, generator=generator, requires_grad=True)
    w = (torch.randn(vocab, features, generator=generator) * 0.3).requires_grad_()
    b = torch.randn(vocab, generator=generator, requires_grad=True) if bias else None
    gold = torch.randint(0, vocab, (tokens,), generator=generator)
    return x, w, b, gold


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_chunked_loss_and_gradients_equal_torch_s(monkeypatch, bias, smoothing):
    monkeypatch.setattr(loss_module, "OUTPUT_CHUNK_ELEMENTS", 200 * 37)       # 37-row chunks, the last one short
    x, w, b, gold = _inputs(bias)
    params = [p for p in (x, w, b) if p is not None]
    fused = output_cross_entropy(x, w, b, gold, smoothing)
    fused_grads = torch.autograd.grad(fused * 3.0, params)                    # the upstream gradient scales them
    reference = F.cross_entropy(F.linear(x, w, b), gold, label_smoothing=smoothing)
    reference_grads = torch.autograd.grad(reference * 3.0, params)
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)
    for got, expected in zip(fused_grads, reference_grads):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    made = []
    monkeypatch.setattr(loss_module._OutputGrads, "add_chunk", lambda *args: made.append(1))
    with torch.no_grad():                                                       # validation: no gradients made
        torch.testing.assert_close(output_cross_entropy(x, w, b, gold, smoothing), reference, rtol=1e-5, atol=1e-5)
    assert made == []


def test_under_bfloat16_autocast_the_products_are_bfloat16_and_the_loss_close():
    x, w, b, gold = _inputs(bias=True)
    reference = F.cross_entropy(F.linear(x, w, b), gold, label_smoothing=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = output_cross_entropy(x.bfloat16(), w, b, gold, 0.1)
    grad_x, grad_w = torch.autograd.grad(fused, [x, w])
    assert fused.dtype == torch.float32 and grad_w.dtype == torch.float32
    assert abs(float(fused.detach()) - float(reference.detach())) < 0.02
    expected_w = torch.autograd.grad(reference, w)[0]
    assert float((grad_w - expected_w).abs().max()) < 0.02 * float(expected_w.abs().max())


def test_dropout_keeps_one_minus_rate_and_the_expected_value():
    torch.manual_seed(1)
    x = torch.ones(1000, 1000)
    for rate in (0.2, 0.25, 0.3):
        mask = dropout_mask(x.shape, rate, torch.float32, x.device)
        kept = mask > 0
        assert abs(float(kept.float().mean()) - (1 - rate)) < 0.003
        assert torch.all(mask[kept] == mask[kept][0])                           # one scale for every kept element
        assert abs(float(mask.mean()) - 1.0) < 0.005                            # unbiased: E[mask] = 1


def test_dropout_is_the_identity_in_eval_mode_and_repeatable_from_a_seed():
    layer = Dropout(0.3)
    x = torch.randn(64, 32, requires_grad=True)
    torch.manual_seed(5)
    first = layer(x)
    torch.manual_seed(5)
    assert torch.equal(first, layer(x))
    (grad,) = torch.autograd.grad(first.sum(), x)
    assert torch.equal(grad == 0, first == 0)                                   # dropped elements get no gradient
    assert torch.equal(layer.eval()(x), x) and torch.equal(Dropout(0.0)(x), x)
