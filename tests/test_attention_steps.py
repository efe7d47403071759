"""`attncli inspect step`: one attention step with its numbers. The JSON's vectors redo the
arithmetic of attention.py's five steps (with W_c and the output layer read from the model's
safetensors, and checked against the torch model), the weights are `inspect alignment`'s row,
user errors are one line, and the terminal view fits 80 columns."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error
from rich.cells import cell_len
from rich.console import Console
from safetensors.numpy import load_file

from attncli.attention_steps import StepExplanation, explain_step
from attncli.batch import make_batch
from attncli.modelfile import load_model, save_model
from attncli.tokenizer import EOS_ID, encode_sentence
from attncli.step_view import attention_step_json, print_attention_step
from attncli.translator import Translator

SENTENCE = "¿Dónde está el perro?"
TARGET = "Where is the dog?"


@pytest.fixture(scope="module")
def biased_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with --attention-bias: its weights plus a non-zero b_c (no training needed)."""
    loaded = load_model(tiny_model_dir)
    from attncli.model import Seq2Seq

    model = Seq2Seq(replace(loaded.model.config, attention_bias=True)).eval()
    missing, unexpected = model.load_state_dict(loaded.model.state_dict(), strict=False)
    assert missing == ["decoder.attention.combine.bias"] and not unexpected
    with torch.no_grad():
        model.decoder.attention.combine.bias.copy_(torch.linspace(-0.5, 0.5, model.config.hidden_size))
    return save_model(tmp_path_factory.mktemp("biased") / "m", model, loaded.src_tokenizer, loaded.tgt_tokenizer,
                      loaded.model_info)


def step_json(run_cli, model_dir, *options) -> dict:
    result = run_cli(["inspect", "step", SENTENCE, "-m", model_dir, "--format", "json", *options])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1
    return json.loads(result.stdout)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.parametrize("biased", [False, True])
@pytest.mark.parametrize("options", [["--word", "0"], ["--word", "1"], ["--target", TARGET, "--word", "3"],
                                     ["--target", TARGET, "--piece", "-1"]])
def test_json_redoes_the_arithmetic(run_cli, tiny_model_dir, biased_model_dir, biased, options):
    model_dir = biased_model_dir if biased else tiny_model_dir
    if options[-1] == "-1":     # the last step: the prediction of </s> after the given target
        pieces = len(step_json(run_cli, model_dir, "--target", TARGET, "--word", "0")["target_pieces"]) - 1
        options = options[:-1] + [str(pieces)]
    data = step_json(run_cli, model_dir, *options)
    weights_file = load_file(str(model_dir / "model.safetensors"))
    w = {name: array.astype(np.float32) for name, array in weights_file.items()}
    h = np.array(data["decoder_state"], np.float32)
    memory = np.array(data["encoder_states"], np.float32)
    hidden = h.size
    assert memory.shape == (len(data["source_pieces"]), hidden) and data["source_pieces"][-1] == "</s>"
    assert data["mask"] == [True] * len(data["source_pieces"])

    scores = np.array(data["scores"], np.float32)
    np.testing.assert_allclose(scores, memory @ h, rtol=1e-5, atol=1e-4)                       # (1)
    weights = np.array(data["weights"], np.float32)
    np.testing.assert_allclose(weights, softmax(scores), rtol=1e-5, atol=1e-7)                 # (2)
    assert weights.sum() == pytest.approx(1.0, abs=1e-5)
    context = np.array(data["context"], np.float32)
    np.testing.assert_allclose(context, weights @ memory, rtol=1e-5, atol=1e-5)                # (3)
    combined = np.array(data["combined"], np.float32)
    assert np.array_equal(combined, np.concatenate([context, h]))                              # (4)
    w_c = w["decoder.attention.combine.weight"]
    assert w_c.shape == (hidden, 2 * hidden)
    pre = w_c @ combined
    if biased:
        assert data["combine_bias"] == [float(b) for b in w["decoder.attention.combine.bias"]]
        pre = pre + w["decoder.attention.combine.bias"]
    else:
        assert data["combine_bias"] is None and "decoder.attention.combine.bias" not in w
    attentional = np.array(data["attentional"], np.float32)
    np.testing.assert_allclose(attentional, np.tanh(pre), rtol=1e-5, atol=1e-5)                # (5)
    if biased:    # the bias matters: without it h̃ would be clearly different
        assert np.abs(np.tanh(w_c @ combined) - attentional).max() > 1e-2

    output_weight = w.get("decoder.output.weight", w["decoder.embed.weight"])     # (tied output: the embedding)
    logits = output_weight @ attentional + w["decoder.output.bias"]
    translator = Translator.load(model_dir, sentences=1)
    assert (data["lexical"] is not None) == ("decoder.lexical.hidden.weight" in w)
    if data["lexical"] is not None:           # the lexical model (the recipe's choice for the tiny corpus)
        src_ids = encode_sentence(translator.src_tokenizer, SENTENCE)[0] + [EOS_ID]
        averaged = np.tanh(weights @ w["encoder.embed.weight"][src_ids])
        lexical = np.array(data["lexical"], np.float32)
        np.testing.assert_allclose(lexical, (np.tanh(w["decoder.lexical.hidden.weight"] @ averaged) + averaged) / 2,
                                   rtol=1e-5, atol=1e-5)
        logits = logits + w["decoder.lexical.output.weight"] @ lexical
    probabilities = softmax(logits)
    best = np.argsort(-probabilities, kind="stable")[:5]
    tokenizer = translator.tgt_tokenizer
    assert [top["piece"] for top in data["top"]] == tokenizer.pieces([int(i) for i in best])
    np.testing.assert_allclose([top["probability"] for top in data["top"]], probabilities[best], rtol=1e-4, atol=1e-6)

    index = data["piece_index"]
    assert data["chosen"] == data["target_pieces"][index]
    assert data["target_pieces"][-1] == "</s>"
    if "--word" in options:
        word = int(options[options.index("--word") + 1])
        assert data["word_index"] == word
        assert data["target_word_of_piece"].index(word) == index               # the word's first piece
    if "--target" in options:
        assert data["target_words"] == TARGET.split() and data["target_given"] is True
    else:    # the model's own translation: its pieces are what `translate` says
        assert tokenizer.processor.decode_pieces(data["target_pieces"][:-1]) == \
            Translator.load(model_dir, sentences=1).translate([SENTENCE])[0]
    chosen_probability = data["chosen_probability"]
    assert data["chosen_rank"] == int((probabilities > chosen_probability * (1 + 1e-4)).sum()) + 1


@pytest.mark.parametrize("biased", [False, True])
def test_vectors_are_the_torch_models(tiny_model_dir, biased_model_dir, biased):
    """h̄_s is the torch encoder's projected memory, and the weights and h̃_t are the torch
    decoder's, teacher-forced over the whole target, at the step's position."""
    model_dir = biased_model_dir if biased else tiny_model_dir
    translator = Translator.load(model_dir, sentences=1)
    loaded = load_model(model_dir)
    src = translator.src_tokenizer.encode(SENTENCE)
    tgt = translator.tgt_tokenizer.encode(TARGET)
    batch = make_batch([src], [tgt])
    with torch.inference_mode():
        encoded = loaded.model.encode(batch.src_ids, batch.src_lengths)
        features, weights = loaded.model.decoder(batch.tgt_in, encoded)   # [h̃; l] with the lexical model
    hidden = loaded.model.config.hidden_size
    for piece in range(len(tgt) + 1):
        step = explain_step(translator, SENTENCE, TARGET, piece=piece)
        np.testing.assert_allclose(step.encoder_states, encoded.memory[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(step.weights, weights[0, piece].numpy(), atol=1e-5)
        np.testing.assert_allclose(step.attentional, features[0, piece, :hidden].numpy(), atol=1e-5)
        np.testing.assert_allclose(step.lexical, features[0, piece, hidden:].numpy(), atol=1e-5)


@pytest.mark.parametrize("target", [None, TARGET])
def test_weights_are_the_alignment_row(run_cli, tiny_model_dir, target):
    given = ["--target", target] if target else []
    result = run_cli(["inspect", "alignment", SENTENCE, "-m", tiny_model_dir, "--format", "json", *given])
    alignment = json.loads(result.stdout)
    rows = alignment["piece_weights"]                  # one row per target piece, then </s>
    assert len(rows) >= 3
    for piece in range(len(rows)):
        data = step_json(run_cli, tiny_model_dir, "--piece", str(piece), *given)
        assert data["target_pieces"] == alignment["tgt_pieces"] + ["</s>"]
        assert data["source_pieces"] == alignment["src_pieces"] + ["</s>"]
        np.testing.assert_allclose(data["weights"], rows[piece], rtol=0, atol=1e-6)
    for word in range(len(alignment["tgt_words"])):
        data = step_json(run_cli, tiny_model_dir, "--word", str(word), *given)
        first = alignment["tgt_word_of_piece"].index(word)
        assert data["piece_index"] == first
        np.testing.assert_allclose(data["weights"], rows[first], rtol=0, atol=1e-6)


@pytest.mark.parametrize("args, words", [
    (["--word", "99"], ["--word 99", "out of range", "--word 0 to"]),
    (["--target", TARGET, "--word", "4"], ["--word 4", "out of range", "4 words"]),
    (["--target", TARGET, "--piece", "99"], ["--piece 99", "out of range"]),
    (["--word", "0", "--piece", "0"], ["--word", "--piece", "not both"]),
    ([], ["--word", "--piece"]),
    (["--word", "-1"], ["--word", "0 or more"]),
    (["--word", "0", "--target", "  "], ["--target", "empty"]),
    (["--word", "0", "--beam", "0"], ["--beam"]),
    (["--word", "0", "--target", TARGET, "--beam", "0"], ["--beam"]),
])
def test_user_errors_are_one_line(run_cli, tiny_model_dir, args, words):
    result = run_cli(["inspect", "step", SENTENCE, "-m", tiny_model_dir, *args])
    assert_one_line_error(result, *words, code=1)


def test_empty_sentence_is_one_line(run_cli, tiny_model_dir):
    result = run_cli(["inspect", "step", "   ", "-m", tiny_model_dir, "--word", "0"])
    assert_one_line_error(result, "SENTENCE", "empty", code=1)


def test_explain_step_needs_the_numpy_runtime(translator):
    with pytest.raises(TypeError, match="sentences=1"):
        explain_step(translator, SENTENCE, word=0)


def render(step: StepExplanation) -> str:
    console = Console(width=80, file=io.StringIO(), color_system=None)
    print_attention_step(console, step)
    return console.file.getvalue()


@pytest.mark.parametrize("options", [{"word": 1}, {"target": TARGET, "word": 3}, {"target": TARGET, "piece": 5}])
def test_table_fits_80_columns_and_shows_each_step(tiny_model_dir, options):
    step = explain_step(Translator.load(tiny_model_dir, sentences=1), SENTENCE, **options)
    text = render(step)
    lines = text.splitlines()
    assert max(cell_len(line) for line in lines) <= 80, text
    for heading in ("h_t, the decoder state", "(1) score(s) = h_t · h̄_s", "(2) a_t(s) = softmax",
                    "(3) c_t = Σ_s a_t(s) h̄_s", "(4) [c_t; h_t]", "(5) h̃_t = tanh(W_c [c_t; h_t])", "Next piece"):
        assert heading in text, heading
    assert step.lexical is not None      # the tiny model has the lexical model (the recipe's choice): shown whole
    assert "lexical model: l_t = (tanh(W_l f_t) + f_t) / 2,\n    f_t = tanh(Σ_s a_t(s) e_s)" in text
    assert "p = softmax(W_o h̃_t + b_o + W_lex l_t)" in text
    hidden = step.decoder_state.size
    assert f"{hidden} values" in text and f"{2 * hidden} values" in text and f"W_c {hidden}×{2 * hidden}" in text
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    source_rows = rows[: len(step.source_pieces)]
    assert [row[1] for row in source_rows] == step.source_pieces                 # </s> included, as it is
    assert [float(row[2]) for row in source_rows] == pytest.approx(step.scores.tolist(), abs=1e-3)
    assert [float(row[3]) for row in source_rows] == pytest.approx(step.weights.tolist(), abs=1e-4)
    top_rows = rows[len(step.source_pieces):]
    assert [row[1] for row in top_rows[:5]] == [piece for piece, _ in step.top]
    marked = [row for row in top_rows if "◀" in row[3]]
    assert len(marked) == 1 and marked[0][1] == step.chosen
    assert ("◀ given" if "target" in options else "◀ chosen") in marked[0][3]
    assert f"predicts {step.chosen}" in text


def test_a_given_piece_outside_the_top_five_is_shown_below_them(tiny_model_dir):
    translator = Translator.load(tiny_model_dir, sentences=1)
    step = explain_step(translator, SENTENCE, TARGET, word=1)
    top = [("▁a", 0.5), ("▁b", 0.2), ("▁c", 0.1), ("▁d", 0.05), ("</s>", 0.04)]
    step = replace(step, top=top, chosen="▁is", chosen_probability=0.001, chosen_rank=40)
    text = render(step)
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    assert rows[-2][0] == "…" and rows[-1][:3] == ["40", "▁is", "0.0010"] and "◀ given" in rows[-1][3]
    assert attention_step_json(step)["top"][4] == {"piece": "</s>", "probability": 0.04}


def test_cli_table_is_80_columns(run_cli, tiny_model_dir):
    result = run_cli(["inspect", "step", SENTENCE, "-m", tiny_model_dir, "--word", "1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("source pieces: ") and "◀ chosen" in result.stdout
    assert max(cell_len(line) for line in result.stdout.splitlines()) <= 80
