"""Fine-tuning with --init-from: the run starts from the given model's weights, vocabulary and sizes."""

from __future__ import annotations

import dataclasses
import json

import torch

from attncli.modelfile import load_model
from attncli.training import train

from conftest import TINY, assert_one_line_error


def test_init_from_starts_at_the_models_weights_and_keeps_its_vocabulary(tmp_path, tiny_model_dir, corpus_files):
    # Other sizes and vocabulary on the command line, and a learning rate too small to move
    # anything: the result must be the start model itself, so its weights really were the start.
    config = dataclasses.replace(TINY, hidden_size=64, embed_size=16, vocab_size=200, epochs=1,
                                 learning_rate=1e-12, warmup_steps=0, batch_tokens=None)
    out = tmp_path / "tuned"
    notes = []
    train(corpus_files[0], corpus_files[1], out, config, init_from=tiny_model_dir,
          on_event=lambda event: notes.append(event.message) if event.kind == "note" else None)
    assert notes[0].startswith("360 training pairs → batches of 2,048 tokens, ")   # the recipe chose only what is not fixed
    assert notes[0].endswith("(options override); the vocabulary and architecture are those of the model it continues")
    start, tuned = load_model(tiny_model_dir), load_model(out)
    assert tuned.model.config == start.model.config
    assert tuned.src_tokenizer.model_proto == start.src_tokenizer.model_proto
    for name, weight in start.model.state_dict().items():
        torch.testing.assert_close(tuned.model.state_dict()[name], weight, atol=2e-3, rtol=0)
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["init_from"] == str(tiny_model_dir)
    assert info["train_config"]["hidden_size"] == start.model.config.hidden_size


def test_init_from_an_unknown_model_is_one_clear_error(run_cli, tmp_path, corpus_files):
    result = run_cli(["train", corpus_files[0], "--dev", corpus_files[1], "--out", tmp_path / "m",
                      "--init-from", "no-such-model"])
    assert_one_line_error(result, "attncli: error: unknown model 'no-such-model'", code=1)
    assert not (tmp_path / "m").exists()
