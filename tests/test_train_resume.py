"""Interrupted training: a run stopped anywhere (KeyboardInterrupt, a real SIGINT/SIGTERM/SIGKILL,
--max-minutes) resumes with --resume to exactly the uninterrupted result, and a resume that cannot
continue that run is refused with one clear error line.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import SUBPROCESS_ENV, assert_one_line_error
from safetensors.torch import load_file

from attncli.config import TrainConfig
from attncli.training import TrainingInterrupted, train

# The number-words task (conftest.numbers), small enough that a run takes about a second.

@pytest.fixture(scope="module", autouse=True)
def schedule_for_toy_epochs():
    """The toy corpus has ~13-update epochs and runs ~40 updates: validate per epoch and let
    validations without progress decay the learning rate and count for patience from the start
    (real corpora get schedule.py's minimum interval and settling), so every part of the saved
    state changes during these runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("attncli.schedule.MIN_VALID_INTERVAL", 1)
        patch.setattr("attncli.schedule.SETTLE_UPDATES", 0)
        yield


# Subword sampling on, with an alpha small enough to split this tiny vocabulary's whole-word pieces
# (1.0 keeps them): a resumed run must draw what the uninterrupted one drew at each update.
RUN = TrainConfig(vocab_size=40, embed_size=16, hidden_size=16, dropout=0.1, batch_tokens=300, epochs=3,
                  warmup_steps=5, learning_rate=0.02, patience=10, threads=1, seed=5, valid_every=8,
                  average_last=3, fp16_weights=False, subword_sampling=0.1)
RUN_OPTIONS = ["--vocab-size", "40", "--embed-size", "16", "--hidden-size", "16", "--dropout", "0.1",
               "--batch-tokens", "300", "--warmup-steps", "5", "--learning-rate", "0.02", "--patience", "10",
               "--threads", "1", "--seed", "5", "--valid-every", "8", "--average-last", "3", "--no-fp16-weights",
               "--subword-sampling", "0.1"]


def without_times(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key != "elapsed_s"} for record in history]


class Recorder:
    """on_event: records step losses and validations; raises KeyboardInterrupt at chosen events."""

    def __init__(self, stop_at=()) -> None:
        self.stop_at = set(stop_at)          # {("step" | "validation", update)}
        self.losses: list[float] = []
        self.validations: list[tuple] = []

    def __call__(self, event) -> None:
        if event.kind == "step":
            self.losses.append(event.loss)
        elif event.kind == "validation":
            self.validations.append((event.step, event.dev_loss, event.dev_bleu, event.improved))
        if (event.kind, event.step) in self.stop_at:
            self.stop_at.discard((event.kind, event.step))
            raise KeyboardInterrupt


class Reference:
    def __init__(self, config: TrainConfig, corpus: tuple[Path, Path], out: Path) -> None:
        self.recorder = Recorder()
        self.result = train(corpus[0], corpus[1], out, config, on_event=self.recorder)
        self.weights = load_file(out / "model.safetensors")
        self.out = out


@pytest.fixture(scope="module")
def references(numbers, tmp_path_factory):
    """Uninterrupted runs, computed once per configuration."""
    cache: dict[int, Reference] = {}

    def get(valid_every: int, epochs: int = RUN.epochs) -> Reference:
        key = (valid_every, epochs)
        if key not in cache:
            config = replace(RUN, valid_every=valid_every, epochs=epochs)
            cache[key] = Reference(config, numbers, tmp_path_factory.mktemp("reference") / "model")
        return cache[key]

    return get


def assert_same_run(reference: Reference, out: Path, result) -> None:
    loaded = load_file(out / "model.safetensors")
    assert loaded.keys() == reference.weights.keys()
    for name, tensor in reference.weights.items():
        assert torch.equal(loaded[name], tensor), name
    assert without_times(result.history) == without_times(reference.result.history)
    for name in ("best_bleu", "best_chrf", "best_dev_loss", "best_step", "steps", "epochs_done", "stop_reason"):
        assert getattr(result, name) == getattr(reference.result, name), name
    info = json.loads((out / "config.json").read_text())["info"]
    assert without_times(info["history"]) == without_times(json.loads((reference.out / "config.json").read_text())["info"]["history"])
    assert not Path(f"{out}.train-state").exists()           # a finished run leaves no state behind


# 1. Interrupted training resumes to exactly the uninterrupted result ---------------------------

@pytest.mark.parametrize("valid_every", [8, 0], ids=["valid-every-8", "valid-every-epoch"])
def test_interrupted_training_resumes_to_the_same_model(numbers, references, tmp_path, valid_every):
    reference = references(valid_every)
    steps_per_epoch = reference.result.steps // RUN.epochs
    assert len(reference.recorder.validations) >= 3 and reference.result.best_step > 0
    last = reference.recorder.validations[-1][0]
    # mid-epoch; an update whose validation is due but not done; just after a validation;
    # the last update of an epoch; the final validation (of the averaged weights)
    first_validation = reference.recorder.validations[0][0]
    stops = {("step", 3), ("step", first_validation), ("validation", reference.recorder.validations[1][0]),
             ("step", 2 * steps_per_epoch), ("validation", last)}
    recorder = Recorder(stops)
    out = tmp_path / "model"
    resume, interruptions = False, 0
    while True:
        try:
            result = train(numbers[0], numbers[1], out, replace(RUN, valid_every=valid_every), on_event=recorder, resume=resume)
            break
        except TrainingInterrupted as stopped:
            interruptions += 1
            assert stopped.result.state_dir == Path(f"{out}.train-state").absolute()
            resume = True
    assert interruptions == len(stops) and not recorder.stop_at
    assert recorder.losses == reference.recorder.losses      # every update, bit for bit
    assert_same_run(reference, out, result)


def test_resume_refuses_other_options_or_corpus_and_a_new_run_refuses_to_overwrite(numbers, tmp_path):
    out = tmp_path / "model"
    with pytest.raises(TrainingInterrupted):
        train(numbers[0], numbers[1], out, RUN, on_event=Recorder({("step", 2)}))
    from attncli.errors import OptionError

    with pytest.raises(OptionError, match="--hidden-size 16, not 32"):
        train(numbers[0], numbers[1], out, replace(RUN, hidden_size=32), resume=True)
    with pytest.raises(OptionError, match="--resume"):
        train(numbers[0], numbers[1], out, RUN)               # would silently discard the stopped run
    with pytest.raises(OptionError, match="--dev"):
        train(numbers[0], None, out, RUN, resume=True)
    moved = tmp_path / "train.tsv"
    shutil.copy(numbers[0], moved)
    with pytest.raises(OptionError, match="CORPUS"):
        train(moved, numbers[1], out, RUN, resume=True)
    with moved.open("a") as handle:
        handle.write("uno\tone\n")
    state = Path(f"{out}.train-state/state.json")
    document = json.loads(state.read_text())
    document["fingerprint"]["corpus"]["path"] = str(moved.resolve())
    state.write_text(json.dumps(document))
    with pytest.raises(OptionError, match="has changed"):
        train(moved, numbers[1], out, RUN, resume=True)


def test_time_limit_keeps_the_state_and_resume_continues(numbers, references, tmp_path):
    """A --max-minutes stop keeps the state; --resume with a larger limit continues that run.

    The stop validated the model after update 1, so the continued run is that run, not the
    uninterrupted one: it has one more validation, and the learning rate may have decayed there.
    """
    reference = references(8)
    out = tmp_path / "model"
    limited = replace(RUN, max_minutes=1e-9)                  # stops after the first update
    result = train(numbers[0], numbers[1], out, limited)
    assert result.stop_reason.startswith("reached --max-minutes") and result.steps == 1
    assert result.state_dir is not None and result.state_dir.is_dir()
    assert [record["step"] for record in result.history] == [1]
    from attncli.errors import OptionError

    with pytest.raises(OptionError, match="--max-minutes 1e-09: this run has trained 0.0 minutes already, and the "
                                          "limit counts the whole run; give a larger one"):
        train(numbers[0], numbers[1], out, limited, resume=True)     # the same limit: nothing left to train
    result = train(numbers[0], numbers[1], out, RUN, resume=True)
    assert result.steps == reference.result.steps and result.stop_reason == reference.result.stop_reason
    regular = list(range(8, result.steps + 1, 8))            # (an averaged validation may follow)
    assert [r["step"] for r in result.history][: 1 + len(regular)] == [1, *regular]
    assert result.state_dir is None and not Path(f"{out}.train-state").exists()


def test_resume_keeps_the_architecture_a_short_budget_chose(numbers, tmp_path, monkeypatch):
    """A budget of 90 minutes or less gives large corpora the lexical model (recipe.py); resumed with a
    larger --max-minutes, the run keeps the model it has instead of being refused."""
    from attncli.recipe import RULE

    monkeypatch.setattr("attncli.recipe.RULE", RULE[-1:])      # the toy corpus counts as a large one
    out = tmp_path / "model"
    result = train(numbers[0], numbers[1], out, replace(RUN, max_minutes=1e-9))
    assert result.steps == 1 and result.state_dir is not None
    result = train(numbers[0], numbers[1], out, RUN, resume=True)
    assert result.steps > 1 and result.state_dir is None
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["lexical_model"] is True


@pytest.mark.parametrize("where,call,signals,stopped_at,saved_at", [
    ("update", 5, 1, 5, 5),            # the update in flight is completed, then the run stops
    ("validation", 1, 1, 8, 8),        # dev decoding is abandoned at once: the validation is redone
    ("update", 10, 2, 9, 8),           # a second signal stops at once: the state of the last validation stays
    ("update", 5, 2, 4, None),         # ... and before any validation there is nothing to resume
], ids=["update", "validation", "twice", "twice-early"])
def test_a_real_sigint_mid_update_or_mid_validation(numbers, references, tmp_path, where, call, signals, stopped_at, saved_at):
    """SIGINT sent from inside the encoder's forward pass: during update `call`, or the
    `call`-th forward pass of dev decoding."""
    from torch.nn.modules.module import register_module_forward_hook

    from attncli.model import Encoder

    reference = references(8)
    calls = 0

    def hook(module, args, output):
        nonlocal calls
        if isinstance(module, Encoder) and module.training == (where == "update"):
            calls += 1
            if calls == call:
                for _ in range(signals):
                    os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "model"
    handle = register_module_forward_hook(hook)
    try:
        with pytest.raises(TrainingInterrupted) as stopped:
            train(numbers[0], numbers[1], out, RUN)
    finally:
        handle.remove()
    assert stopped.value.result.steps == stopped_at
    if saved_at is None:
        assert stopped.value.result.state_dir is None
        return
    state = json.loads(Path(f"{out}.train-state/state.json").read_text())
    assert state["step"] == saved_at
    result = train(numbers[0], numbers[1], out, RUN, resume=True)
    assert_same_run(reference, out, result)



@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: signal.Signals(s).name)
def test_a_signal_to_attncli_train_loses_nothing(numbers, references, tmp_path, run_cli, signum):
    """A real signal at a random moment after the first validation, then `train --resume`."""
    epochs = 6
    reference = references(8, epochs)
    out = tmp_path / "model"
    args = ["train", str(numbers[0]), "--dev", str(numbers[1]), "--out", str(out), "--epochs", str(epochs), *RUN_OPTIONS]
    process = subprocess.Popen([sys.executable, "-m", "attncli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=SUBPROCESS_ENV, cwd=tmp_path)
    state = Path(f"{out}.train-state")
    # Wait for the state saved at a validation chosen per signal (the run has 78 updates, one
    # validation every 8), then signal at once: the run is certainly still going, however fast.
    target_step = random.Random(signum).choice([8, 16, 24, 32])
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads((state / "state.json").read_text())["step"] >= target_step:
                break
        except (OSError, ValueError, KeyError):   # not written yet, or being swapped in
            pass
        time.sleep(0.005)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    stderr = stderr.decode()
    assert "Traceback" not in stderr
    if signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, stderr          # it must still have been running
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("attncli: interrupted at update") and "--resume" in last, stderr
    assert state.is_dir()
    result = run_cli([*args, "--resume"])
    assert result.exit_code == 0, result.stderr
    assert f"model: {out}" in result.stdout
    loaded = load_file(out / "model.safetensors")
    assert all(torch.equal(loaded[name], tensor) for name, tensor in reference.weights.items())
    history = json.loads((out / "config.json").read_text())["info"]["history"]
    expected = json.loads((reference.out / "config.json").read_text())["info"]["history"]
    assert without_times(history) == without_times(expected)
    assert not state.exists()


# 2. A resume that cannot continue the stopped run: one line on stderr ----------------------------

@pytest.fixture(scope="module")
def stopped_run(numbers, tmp_path_factory) -> Path:
    """An interrupted run: its model folder (after one validation) and OUT.train-state."""
    out = tmp_path_factory.mktemp("stopped") / "model"
    with pytest.raises(TrainingInterrupted):
        train(numbers[0], numbers[1], out, RUN, on_event=Recorder({("step", 9)}))
    return out


@pytest.fixture
def stopped_copy(stopped_run, tmp_path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(stopped_run, out)
    shutil.copytree(f"{stopped_run}.train-state", f"{out}.train-state")
    return out


def stopped_args(numbers, out: Path, *extra: str) -> list[str]:
    return ["train", numbers[0], "--dev", numbers[1], "--out", out, "--epochs", "3", *RUN_OPTIONS, *extra]


@pytest.mark.parametrize("extra,damage,words", [
    ([], None, ["train-state", "--resume"]),                                    # a new run would discard it
    (["--resume", "--hidden-size", "32"], None, ["--resume", "--hidden-size 16, not 32"]),
    (["--resume", "--seed", "6"], None, ["--seed 5, not 6"]),
    (["--resume"], "truncate", ["state.safetensors", "truncated"]),
    (["--resume"], "json", ["state.json"]),
    (["--resume"], "shape", ["state.safetensors", "shape"]),
    (["--resume"], "spm", ["spm.src.model"]),
    (["--resume"], "pickle", ["state.safetensors"]),
    (["--resume", "--device", "cpu"], "float16", ["--resume", "float16", "--device cuda"]),   # a GPU run's state
], ids=["no-resume", "other-size", "other-seed", "truncated", "json", "shape", "spm", "pickle", "float16"])
def test_resume_problems_are_one_line(run_cli, numbers, stopped_copy, extra, damage, words):
    state = Path(f"{stopped_copy}.train-state")
    tensors = state / "state.safetensors"
    if damage == "truncate":
        tensors.write_bytes(tensors.read_bytes()[:5000])
    elif damage == "json":
        (state / "state.json").write_text('{"format": "attncli-train-state", "format_version": 1, "epoch": "one"}')
    elif damage == "shape":
        from safetensors.torch import save_file

        stored = load_file(tensors)
        name = next(name for name in stored if name.startswith("model."))
        stored[name] = torch.zeros(3, 3)
        save_file(stored, tensors)
    elif damage == "spm":
        (state / "spm.src.model").write_bytes(b"not a sentencepiece model")
    elif damage == "pickle":
        torch.save({"x": 1}, tensors)
    elif damage == "float16":
        document = json.loads((state / "state.json").read_text())
        (state / "state.json").write_text(json.dumps({**document, "precision": "float16"}))
    assert_one_line_error(run_cli(stopped_args(numbers, stopped_copy, *extra)), *words)


def test_overwrite_leaves_the_stopped_state_to_rank_0(stopped_copy):
    """Under torchrun every process is given --overwrite, and only rank 0 removes the stopped
    run's state: another rank that refused it, or raced rank 0 to it, would stop the run."""
    from attncli.training import saved_run

    state = Path(f"{stopped_copy}.train-state")
    assert saved_run(stopped_copy, {}, resume=False, overwrite=True, discard=False) is None and state.is_dir()
    assert saved_run(stopped_copy, {}, resume=False, overwrite=True) is None and not state.exists()
