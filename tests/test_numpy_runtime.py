"""The NumPy runtime (one sentence, no torch) gives the torch search's translations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from attncli.config import ModelConfig
from attncli.model import Seq2Seq
from attncli.modelfile import load_model, save_model
from attncli.translator import FEW_SENTENCES, Translator

SENTENCES = ["Tengo hambre.", "¿Dónde está el perro?", "Tom no sabe nadar.", "No.",
             "Ella vive en Madrid con su madre y su hermano pequeño.", "Hola", "gato gato gato gato gato"]


def runtimes(model_dir, precision="int8") -> tuple[Translator, Translator]:
    """The NumPy and the torch runtime of one model, as Translator.load picks them."""
    numpy_translator = Translator.load(model_dir, precision=precision, sentences=1)
    torch_translator = Translator.load(model_dir, threads=1, precision=precision)
    assert (numpy_translator.runtime, torch_translator.runtime) == ("numpy", "torch")
    return numpy_translator, torch_translator


def same_translations(model_dir, beams=(1, 2, 5), precision="int8") -> None:
    numpy_translator, torch_translator = runtimes(model_dir, precision)
    for beam in beams:
        expected = torch_translator.translate(SENTENCES, beam_size=beam)
        assert [numpy_translator.translate([s], beam)[0] for s in SENTENCES] == expected, f"beam {beam}"


@pytest.mark.parametrize("precision", ["int8", "float32"])
def test_trained_model(tiny_model_dir, precision):
    same_translations(tiny_model_dir, precision=precision)


@pytest.mark.parametrize("precision", ["int8", "float32"])
@pytest.mark.parametrize("layers, input_feeding, tied, fp16, lexical", [
    (1, False, False, False, False), (2, False, False, True, False), (1, True, False, False, False),
    (2, True, True, False, False), (1, False, True, False, True), (2, True, False, True, True)])
def test_every_model_shape(tmp_path, tiny_model_dir, layers, input_feeding, tied, fp16, lexical, precision):
    """Untrained models of each shape: random outputs that often run into the length limit."""
    loaded = load_model(tiny_model_dir)
    vocab = len(loaded.src_tokenizer)
    config = ModelConfig(src_vocab_size=vocab, tgt_vocab_size=vocab, embed_size=24 if not tied else 32,
                         hidden_size=32, encoder_layers=layers, decoder_layers=layers,
                         input_feeding=input_feeding, tied_output=tied, lexical_model=lexical)
    torch.manual_seed(layers * 10 + input_feeding)
    model = Seq2Seq(config).eval()
    with torch.no_grad():                     # spread the scores: no near-ties between the two runtimes
        model.decoder.output.weight.mul_(4.0)
        if lexical:
            model.decoder.lexical.output.weight.mul_(4.0)
    save_model(tmp_path / "m", model, loaded.src_tokenizer, loaded.tgt_tokenizer, fp16=fp16)
    same_translations(tmp_path / "m", beams=(1, 3), precision=precision)


def cli_stdout_without_torch(args: list[str], stdin: str = "") -> str:
    """stdout of `attncli ARGS` in a fresh interpreter, asserting it never imported torch."""
    script = ("import sys\nfrom attncli.cli import main\n"
              f"code = main({[str(a) for a in args]!r})\n"
              "assert code in (0, None), code\nassert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], input=stdin, capture_output=True, text=True,
                            encoding="utf-8", timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_translate_sentence_does_not_import_torch(tiny_model_dir):
    stdout = cli_stdout_without_torch(["translate", "--model", tiny_model_dir, "Tengo hambre."])
    assert stdout == Translator.load(tiny_model_dir, threads=1).translate(["Tengo hambre."])[0] + "\n"


@pytest.mark.parametrize("target, shift", [(None, 0), ("I am hungry .", 0), ("I am hungry .", 1)])
def test_alignment_equals_the_torch_alignment(tiny_model_dir, target, shift):
    numpy_translator, torch_translator = runtimes(tiny_model_dir)
    for sentence in SENTENCES[:4]:
        expected = torch_translator.align(sentence, target, attention_shift=shift)
        got = numpy_translator.align(sentence, target, attention_shift=shift)
        assert (got.tgt_words, got.tgt_pieces, got.src_pieces) == (expected.tgt_words, expected.tgt_pieces, expected.src_pieces)
        np.testing.assert_allclose(got.piece_weights, expected.piece_weights, atol=1e-5)
        np.testing.assert_allclose(got.word_weights, expected.word_weights, atol=1e-5)
        assert got.score == pytest.approx(expected.score, abs=1e-3)
        for mutual in (False, True):
            assert got.links(0.1, mutual) == expected.links(0.1, mutual)


def test_inspect_alignment_of_a_sentence_does_not_import_torch(tiny_model_dir):
    stdout = cli_stdout_without_torch(["inspect", "alignment", "--model", tiny_model_dir, "Tengo hambre.",
                                       "--format", "pharaoh"])
    torch_translator = Translator.load(tiny_model_dir, threads=1)
    expected = torch_translator.align("Tengo hambre.").links(torch_translator.link_defaults.min_weight,
                                                             torch_translator.link_defaults.mutual)
    assert stdout == " ".join(f"{i}-{j}" for i, j in expected) + "\n"


def test_a_few_stdin_lines_do_not_import_torch(tiny_model_dir):
    lines = ["Tengo hambre.", "", "¿Dónde está el perro?", "No."]
    stdout = cli_stdout_without_torch(["translate", "--model", tiny_model_dir], stdin="\n".join(lines) + "\n")
    expected = list(Translator.load(tiny_model_dir, threads=1).translate_stream(lines))
    assert stdout == "\n".join(expected) + "\n"


def test_few_and_many_stdin_lines_translate_alike(run_cli, tiny_model_dir):
    """32 lines go through NumPy, 33 through torch: the first 32 outputs are the same."""
    lines = (SENTENCES * 10)[:FEW_SENTENCES + 1]
    few = run_cli(["translate", "-m", tiny_model_dir], stdin=("\n".join(lines[:-1]) + "\n").encode())
    many = run_cli(["translate", "-m", tiny_model_dir], stdin=("\n".join(lines) + "\n").encode())
    assert few.exit_code == many.exit_code == 0
    assert few.stdout.splitlines() == many.stdout.splitlines()[:-1]
    assert len(many.stdout.splitlines()) == FEW_SENTENCES + 1


def test_load_picks_the_runtime_by_the_number_of_sentences(tiny_model_dir):
    assert Translator.load(tiny_model_dir, sentences=FEW_SENTENCES).runtime == "numpy"
    assert Translator.load(tiny_model_dir, sentences=FEW_SENTENCES + 1).runtime == "torch"
    assert Translator.load(tiny_model_dir).runtime == "torch"
    few, lines = Translator.for_lines(iter(["a"] * FEW_SENTENCES), tiny_model_dir)
    assert few.runtime == "numpy" and list(lines) == ["a"] * FEW_SENTENCES
    many, lines = Translator.for_lines(iter(["a"] * (FEW_SENTENCES + 5)), tiny_model_dir)
    assert many.runtime == "torch" and list(lines) == ["a"] * (FEW_SENTENCES + 5)


@pytest.mark.parametrize("precision", ["int8", "float32"])
def test_runtimes_agree_step_by_step(tiny_model_dir, precision):
    """The decoder step of each runtime, fed the same pieces: logits and attention agree at every
    step (not only the final strings). int8 products are bit-equal in both, so the logits only
    differ by float32 rounding of the float parts."""
    from attncli.batch import make_batch
    from attncli.numpy_runtime import NumpySeq2Seq

    from attncli.tokenizer import BOS_ID, EOS_ID, encode_sentence

    numpy_translator, torch_translator = runtimes(tiny_model_dir, precision)
    src = encode_sentence(numpy_translator.src_tokenizer, "¿Dónde está el perro?")[0]
    tgt = encode_sentence(numpy_translator.tgt_tokenizer, "Where is the dog?")[0]
    model, decoder = torch_translator.model, torch_translator.search_decoder
    with torch.inference_mode():
        batch = make_batch([src])
        encoded = decoder.prepare(model.encode(batch.src_ids, batch.src_lengths))
        state = decoder.initial_state(encoded)
    numpy_model: NumpySeq2Seq = numpy_translator.model
    numpy_encoded = numpy_model.encode(src + [EOS_ID])
    h = numpy_encoded.init_h[:, None]
    c, attentional = np.zeros_like(h), np.zeros((1, numpy_model.config.hidden_size), np.float32)
    for prev in [BOS_ID] + tgt:
        with torch.inference_mode():
            torch_features, state = decoder.step(torch.tensor([prev]), state, encoded)    # [h̃; l] (lexical model)
            torch_logits = decoder.logits(torch_features).numpy()
        logits, h, c, attentional, _ = numpy_model.step_logits(np.array([prev]), h, c, attentional, numpy_encoded)
        np.testing.assert_allclose(attentional, state.attentional.numpy(), atol=1e-5)
        np.testing.assert_allclose(logits, torch_logits, atol=1e-4)
        assert logits.argmax() == torch_logits.argmax()


def test_attention_bias_in_both_runtimes(tmp_path, corpus_files):
    """--attention-bias: h̃ = tanh(W_c [c; h] + b_c). Trained, saved, loaded: a bias is there, it
    is not zero, and both runtimes give the same translations and attention."""
    from dataclasses import replace

    from safetensors.numpy import load_file

    from attncli.training import train
    from conftest import TINY

    train(corpus_files[0], corpus_files[1], tmp_path / "m", replace(TINY, attention_bias=True, epochs=2))
    bias = load_file(tmp_path / "m" / "model.safetensors")["decoder.attention.combine.bias"]
    assert bias.shape == (TINY.hidden_size,) and np.abs(bias).max() > 0
    same_translations(tmp_path / "m", beams=(1, 3))
    numpy_translator, torch_translator = runtimes(tmp_path / "m")
    for sentence in SENTENCES[:3]:
        np.testing.assert_allclose(numpy_translator.align(sentence).piece_weights,
                                   torch_translator.align(sentence).piece_weights, atol=1e-5)
