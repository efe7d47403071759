"""Robustness: interrupted training resumes to the same model; kill -9 never leaves a broken
model; bad input is one stderr line; the corpus reader and the Translator survive arbitrary text;
stdout may close early.
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
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from attncli.config import TrainConfig
from attncli.corpus import SentencePair, read_pairs
from attncli.errors import CorpusError, InputError
from attncli.training import TrainingInterrupted, train

ROOT = Path(__file__).resolve().parent.parent

# A learnable toy task (Spanish number words -> English) so dev loss keeps improving and
# several best states are kept for --average-last: every part of the saved state matters.
ES = "uno dos tres cuatro cinco seis siete ocho nueve diez once doce".split()
EN = "one two three four five six seven eight nine ten eleven twelve".split()
RUN = TrainConfig(vocab_size=40, embed_size=16, hidden_size=16, dropout=0.1, batch_tokens=300, epochs=3,
                  warmup_steps=5, learning_rate=0.02, patience=10, threads=1, seed=5, valid_every=8,
                  average_last=3, fp16_weights=False)
RUN_OPTIONS = ["--vocab-size", "40", "--embed-size", "16", "--hidden-size", "16", "--dropout", "0.1",
               "--batch-tokens", "300", "--warmup-steps", "5", "--learning-rate", "0.02", "--patience", "10",
               "--threads", "1", "--seed", "5", "--valid-every", "8", "--average-last", "3", "--no-fp16-weights"]


@pytest.fixture(scope="module")
def numbers(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("numbers")
    rng = random.Random(0)

    def pair() -> str:
        picks = [rng.randrange(len(ES)) for _ in range(rng.randint(2, 5))]
        return " ".join(ES[i] for i in picks) + "\t" + " ".join(EN[i] for i in picks)

    (folder / "train.tsv").write_text("\n".join(pair() for _ in range(300)) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("\n".join(pair() for _ in range(30)) + "\n", encoding="utf-8")
    return folder / "train.tsv", folder / "dev.tsv"


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
    result = train(numbers[0], numbers[1], out, RUN, resume=True)
    assert result.steps == reference.result.steps and result.stop_reason == reference.result.stop_reason
    regular = list(range(8, result.steps + 1, 8))            # (an averaged validation may follow)
    assert [r["step"] for r in result.history][: 1 + len(regular)] == [1, *regular]
    assert result.state_dir is None and not Path(f"{out}.train-state").exists()


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


SUBPROCESS_ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


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


SAVE_LOOP = """
import sys
from attncli.config import ModelConfig
from attncli.model import Seq2Seq
from attncli.modelfile import load_model, save_model
tiny = load_model(sys.argv[1])
vocab = len(tiny.src_tokenizer)
model = Seq2Seq(ModelConfig(src_vocab_size=vocab, tgt_vocab_size=vocab, embed_size=256, hidden_size=512))
for n in range(10**6):
    save_model(sys.argv[2], model, tiny.src_tokenizer, tiny.tgt_tokenizer, {"n": n})
    print(n, flush=True)
"""


def test_kill_9_while_saving_leaves_a_loadable_model(tiny_model_dir, tmp_path):
    """SIGKILL at random moments of a save loop (a ~15 MB model): the folder always loads."""
    from attncli.modelfile import load_model

    target = tmp_path / "model"
    rng = random.Random(11)
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(tiny_model_dir), str(target)],
                                   stdout=subprocess.PIPE, env=SUBPROCESS_ENV)
        assert process.stdout.readline()                   # one complete save is on disk
        time.sleep(rng.uniform(0.0, 0.5))
        process.kill()
        process.wait(timeout=60)
        loaded = load_model(target)
        assert isinstance(loaded.info["n"], int)


# 2. Bad input through the real entry point: one stderr line, no traceback ------------------------

@pytest.fixture(scope="module")
def stopped_run(numbers, tmp_path_factory) -> Path:
    """An interrupted run: its model folder (after one validation) and OUT.train-state."""
    out = tmp_path_factory.mktemp("stopped") / "model"
    with pytest.raises(TrainingInterrupted):
        train(numbers[0], numbers[1], out, RUN, on_event=Recorder({("step", 9)}))
    return out


def break_model(folder: Path, how: str) -> None:
    config = folder / "config.json"
    if how == "no-spm":
        (folder / "spm.model").unlink()
    elif how == "no-config":
        config.unlink()
    elif how == "no-weights":
        (folder / "model.safetensors").unlink()
    elif how == "truncated":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) * 2 // 3])
    elif how == "header-only":
        (folder / "model.safetensors").write_bytes((10**12).to_bytes(8, "little") + b"{")
    elif how == "pickle":
        import pickle

        (folder / "model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif how == "other-spm":
        from attncli.tokenizer import Tokenizer

        other = Tokenizer.train(["uno dos tres cuatro", "one two three four"] * 50, vocab_size=40)
        (folder / "spm.model").write_bytes(other.model_proto)
    else:
        document = json.loads(config.read_text())
        if how == "bad-json":
            config.write_text(config.read_text()[:-20])
            return
        if how == "vocab":
            document["model"]["src_vocab_size"] += 1
        elif how == "huge":
            document["model"]["hidden_size"] = 10**9
        elif how == "unknown-key":
            document["model"]["colour"] = "blue"
        elif how == "version":
            document["format_version"] = 99
        elif how == "not-object":
            document["model"] = [1, 2]
        elif how == "bad-defaults":
            document["info"]["defaults"] = {"beam_size": "five", "length_penalty": 1.0}
        config.write_text(json.dumps(document))


BROKEN_MODELS = [
    ("no-spm", ["spm.model", "missing"]),
    ("no-config", ["config.json", "not a model folder"]),
    ("no-weights", ["model.safetensors", "missing"]),
    ("truncated", ["model.safetensors", "truncated"]),
    ("header-only", ["model.safetensors"]),
    ("pickle", ["model.safetensors", "pickle"]),
    ("other-spm", ["SentencePiece", "not the one"]),
    ("bad-json", ["config.json", "not valid JSON"]),
    ("vocab", ["vocabulary", "does not match"]),
    ("huge", ["config.json", "hidden_size"]),
    ("unknown-key", ["config.json", "colour"]),
    ("version", ["config.json", "format_version"]),
    ("not-object", ["config.json", "'model'"]),
    ("bad-defaults", ["config.json", "beam_size"]),
]


def assert_one_line_error(result, words) -> None:
    assert result.exit_code not in (0, None), result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.startswith("attncli: error: "), result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr, (word, result.stderr)


@pytest.mark.parametrize("command", ["translate", "evaluate", "alignment"])
@pytest.mark.parametrize("how,words", BROKEN_MODELS, ids=[case[0] for case in BROKEN_MODELS])
def test_broken_model_folders_are_one_line_errors(run_cli, tiny_model_dir, corpus_files, tmp_path, command, how, words):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    break_model(folder, how)
    args = {"translate": ["translate", "hola", "-m", folder],
            "evaluate": ["evaluate", corpus_files[1], "-m", folder],
            "alignment": ["inspect", "alignment", "hola", "-m", folder]}[command]
    assert_one_line_error(run_cli(args), words)


def bad_inputs(folder: Path) -> None:
    (folder / "blank.tsv").write_text("\n  \n\n", encoding="utf-8")
    (folder / "one.tsv").write_text("hola\thello\n", encoding="utf-8")
    (folder / "ok.tsv").write_text("hola\thello\nadiós\tbye\n", encoding="utf-8")
    (folder / "dir").mkdir()


TRAIN = ["train", "{train}", "--dev", "{dev}", "--epochs", "1", "--vocab-size", "40", "--embed-size", "8",
         "--hidden-size", "8", "--threads", "1", "--out", "{tmp}/m"]
CASES = [
    # corpora
    (["train", "{train}", "--dev", "{tmp}/dir"], ["dir", "is a directory"]),
    (["train", "{train}", "--dev", "{tmp}/blank.tsv"], ["blank.tsv", "no source<TAB>target pairs"]),
    (["train", "{tmp}/one.tsv", "--out", "{tmp}/m"], ["at least two pairs", "--dev"]),
    (["evaluate", "{tmp}/dir", "-m", "{tiny}"], ["dir", "is a directory"]),
    (["evaluate", "{tmp}/blank.tsv", "-m", "{tiny}"], ["blank.tsv", "no source<TAB>target pairs"]),
    (["inspect", "alignment", "--file", "{tmp}/missing.tsv", "-m", "{tiny}"], ["missing.tsv", "no such file"]),
    ([*TRAIN[:-2], "--out", "{tmp}/ok.tsv"], ["--out", "ok.tsv", "is a file"]),
    ([*TRAIN[:-2], "--out", "{tmp}/ok.tsv/m"], ["--out", "ok.tsv/m"]),
    ([*TRAIN, "--max-len", "1"], ["--max-len"]),
    (["train", "{slice}", "--vocab-size", "40", "--out", "{tmp}/m"], ["--vocab-size", "at least"]),  # < its characters
    # unknown models
    (["evaluate", "{dev}", "-m", "zz-qq"], ["unknown model", "zz-qq"]),
    (["inspect", "alignment", "hola", "-m", "zz-qq"], ["unknown model", "zz-qq"]),
    (["translate", "hola", "-m", "{tmp}/ok.tsv"], ["ok.tsv"]),
    # option values
    (["translate", "hola", "-m", "{tiny}", "--beam", "-1"], ["--beam"]),
    (["translate", "hola", "-m", "{tiny}", "--beam", "1000"], ["--beam"]),
    (["evaluate", "{dev}", "-m", "{tiny}", "--beam", "0"], ["--beam"]),
    (["inspect", "alignment", "hola", "-m", "{tiny}", "--beam", "0"], ["--beam"]),
    (["inspect", "alignment", "--file", "{dev}", "-m", "{tiny}", "--batch-size", "0"], ["--batch-size"]),
    (["inspect", "alignment", "hola", "-m", "{tiny}", "--min-weight", "2"], ["--min-weight"]),
    (["inspect", "alignment", "hola", "-m", "{tiny}", "--shift", "-1"], ["--shift"]),
    (["translate", "hola", "-m", "{tiny}", "--beam", "two"], ["--beam", "two", "int"]),
    (["train", "{train}", "--embed-size", "-1"], ["--embed-size"]),
    (["train", "{train}", "--vocab-size", "0"], ["--vocab-size"]),
    (["train", "{train}", "--batch-tokens", "-5"], ["--batch-tokens"]),
    (["train", "{train}", "--epochs", "0"], ["--epochs"]),
    (["train", "{train}", "--max-minutes", "-1"], ["--max-minutes"]),
    (["train", "{train}", "--warmup-steps", "-1"], ["--warmup-steps"]),
    (["train", "{train}", "--threads", "-1"], ["--threads"]),
    (["train", "{train}", "--hidden-size", "100000"], ["--hidden-size"]),
    (["train", "{train}", "--learning-rate", "nan"], ["--learning-rate"]),
    (["train", "{train}", "--max-minutes", "inf"], ["--max-minutes"]),
    (["train", "{train}", "--label-smoothing", "1"], ["--label-smoothing"]),
    (["train", "{train}", "--average-last", "0"], ["--average-last"]),
    # empty sentences
    (["translate", "", "-m", "{tiny}"], ["empty"]),
    (["inspect", "alignment", "", "-m", "{tiny}"], ["empty"]),
    (["inspect", "alignment", " \t ", "-m", "{tiny}", "--target", "hello"], ["empty"]),
    # resuming
    (["train", "{train}", "--dev", "{dev}", "--out", "{tmp}/never", "--resume"], ["--resume", "never.train-state"]),
]


@pytest.mark.parametrize("args,words", CASES, ids=[f"{n}-{' '.join(c[0][:2])}" for n, c in enumerate(CASES)])
def test_bad_input_is_one_line_on_stderr(run_cli, tmp_path, tiny_model_dir, numbers, args, words):
    bad_inputs(tmp_path)
    from conftest import SLICE

    fill = {"tmp": tmp_path, "tiny": tiny_model_dir, "train": numbers[0], "dev": numbers[1], "slice": SLICE}
    assert_one_line_error(run_cli([str(a).format(**fill) for a in args]), [w.format(**fill) for w in words])


def test_unreadable_corpus(run_cli, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can read a file with mode 000")
    corpus = tmp_path / "secret.tsv"
    corpus.write_text("hola\thello\n")
    corpus.chmod(0)
    assert_one_line_error(run_cli(["train", corpus]), ["secret.tsv", "permission denied"])


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
], ids=["no-resume", "other-size", "other-seed", "truncated", "json", "shape", "spm", "pickle"])
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
    assert_one_line_error(run_cli(stopped_args(numbers, stopped_copy, *extra)), words)


# 3. Properties: the corpus reader and the Translator never crash -----------------------------

ODD = "\t\r\n\x00\x1c\x1d\x1e\x85\u2028\u2029\ufeff\u200b \xa0é中🙂"
line_text = st.text(alphabet=st.one_of(st.sampled_from(ODD), st.characters(min_codepoint=32, max_codepoint=0x10FFFF,
                                                                            blacklist_categories=())), max_size=25)
raw_line = st.one_of(
    line_text.map(lambda text: text.encode("utf-8", "surrogatepass")),   # lone surrogates: invalid UTF-8
    st.tuples(line_text, line_text).map(lambda p: f"{p[0]}\t{p[1]}".encode("utf-8", "surrogatepass")),
    st.binary(max_size=25),
    st.sampled_from([b"hola\tadi\xf3s", b"\xef\xbb\xbfbom\tok", b"a\tb\r", b"a\tb\r\r", b"\tx", b"x\t", b"a\t\xed\xa0\x80"]),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hypothesis") / "corpus.tsv"


@settings(max_examples=30, deadline=None)
@given(lines=st.lists(raw_line, max_size=6), ending=st.sampled_from([b"\n", b"\r\n"]))
def test_corpus_reader_gives_pairs_or_a_corpus_error(scratch, lines, ending):
    scratch.write_bytes(ending.join(lines) + (ending if lines else b""))
    physical = scratch.read_bytes().split(b"\n")          # what `wc -l` counts; never U+2028 and kin
    try:
        pairs = read_pairs(scratch)
    except CorpusError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(scratch))
        if message.startswith(f"{scratch}:") and message[len(str(scratch)) + 1].isdigit():
            line_no = int(message[len(str(scratch)) + 1:].split(":")[0])
            assert 1 <= line_no <= len(physical)
        return
    assert pairs and all(isinstance(pair, SentencePair) for pair in pairs)
    for pair in pairs:
        for side in (pair.source, pair.target):
            assert side and side == side.strip() and "\t" not in side and "\n" not in side
    texts = [raw.decode("utf-8") for raw in physical]
    texts[0] = texts[0].removeprefix("\ufeff")
    non_blank = [text for text in texts if text.rstrip("\r\n").strip()]
    assert len(pairs) == len(non_blank)


@settings(max_examples=30, deadline=None)
@given(text=st.text(max_size=60))
def test_translate_never_crashes_on_any_text(translator, text):
    try:
        [output] = translator.translate([text], beam_size=2)
    except InputError as exc:
        assert text.split() and "too long" in str(exc)
        return
    assert isinstance(output, str) and "\n" not in output
    if not text.split():
        assert output == ""


@settings(max_examples=5, deadline=None)
@given(words=st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=4), min_size=380, max_size=420))
def test_translate_refuses_only_too_long_input(translator, words):
    from attncli.tokenizer import MAX_INPUT_PIECES

    pieces = len(translator.src_tokenizer.encode(" ".join(words)))
    try:
        translator.translate([" ".join(words)], beam_size=1)
    except InputError as exc:
        assert pieces > MAX_INPUT_PIECES and "too long" in str(exc)
    else:
        assert pieces <= MAX_INPUT_PIECES


def test_translate_refuses_lone_surrogates_with_an_input_error(translator):
    with pytest.raises(InputError):
        translator.translate(["hola \udcff"])


def test_negative_threads_for_translate_is_one_line(run_cli, tiny_model_dir):
    assert_one_line_error(run_cli(["translate", "hola", "-m", tiny_model_dir, "--threads", "-1"]), ["--threads"])


def test_a_too_long_stdin_line_is_named_after_the_lines_before_it(run_cli, tiny_model_dir):
    long_line = " ".join(["palabra"] * 10_000)
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin=f"hola\n\n{long_line}\nadiós\n".encode())
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 2                # lines 1 and 2 were translated and written
    assert result.stderr.startswith("attncli: error: stdin:3: the sentence is too long")
    assert result.stderr.count("\n") == 1


# 4. Streams ------------------------------------------------------------------------------------

def test_translate_into_a_closed_pipe_exits_quietly(tiny_model_dir, corpus_files, tmp_path):
    sources = [line.split("\t")[0] for line in corpus_files[1].read_text(encoding="utf-8").splitlines()]
    big = tmp_path / "big.txt"
    big.write_text("\n".join(sources * 60) + "\n", encoding="utf-8")       # 2,400 lines
    with big.open("rb") as stdin:
        translate = subprocess.Popen([sys.executable, "-m", "attncli", "translate", "-m", str(tiny_model_dir),
                                      "--beam", "1", "--threads", "1"], stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=SUBPROCESS_ENV)
        head = subprocess.Popen(["head", "-1"], stdin=translate.stdout, stdout=subprocess.PIPE)
        translate.stdout.close()                        # only head holds the read end now
        first, _ = head.communicate(timeout=120)
        stderr = translate.communicate(timeout=120)[1].decode()
    assert len(first.decode().splitlines()) == 1
    assert stderr == ""                                 # no BrokenPipeError traceback, no message
    assert translate.returncode == 141                  # as a process killed by SIGPIPE; 1 would mean an error


@pytest.mark.parametrize("output_format", ["pharaoh", "table"])     # typer.echo, and rich's console
def test_inspect_alignment_into_a_closed_pipe_exits_quietly(tiny_model_dir, corpus_files, tmp_path, output_format):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(corpus_files[1].read_text(encoding="utf-8") * 20, encoding="utf-8")      # 800 pairs
    inspect = subprocess.Popen([sys.executable, "-m", "attncli", "inspect", "alignment", "-m", str(tiny_model_dir),
                                "--file", str(pairs), "--format", output_format], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=SUBPROCESS_ENV)
    head = subprocess.Popen(["head", "-1"], stdin=inspect.stdout, stdout=subprocess.PIPE)
    inspect.stdout.close()
    first, _ = head.communicate(timeout=120)
    stderr = inspect.communicate(timeout=120)[1].decode()
    assert len(first.decode().splitlines()) == 1
    assert stderr == ""
    assert inspect.returncode == 141


def test_ctrl_c_while_translating_stdin_is_status_130(tiny_model_dir):
    translate = subprocess.Popen([sys.executable, "-m", "attncli", "translate", "-m", str(tiny_model_dir), "--beam", "1"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=SUBPROCESS_ENV)
    translate.stdin.write("hola\n".encode() * 500)       # one whole chunk: its output proves we are running
    translate.stdin.flush()
    assert translate.stdout.readline()
    translate.send_signal(signal.SIGINT)                # while it waits for more stdin
    _, stderr = translate.communicate(timeout=60)
    assert translate.returncode == 130
    assert stderr.decode() == "attncli: interrupted.\n"


def test_blank_and_crlf_lines_keep_their_places(run_cli, tiny_model_dir, translator):
    sources = ["¿Dónde está el perro?", "Tengo un gato."]
    expected = translator.translate(sources, beam_size=1)
    stdin = f"{sources[0]}\r\n \t \r\n\r\n{sources[1]}\n\n".encode()
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\n") == [expected[0], "", "", expected[1], "", ""]   # five lines in, five out


def test_a_too_long_line_stops_with_one_error_line(run_cli, tiny_model_dir):
    """Current behaviour, kept: a line over MAX_INPUT_PIECES stops the stream with exit status 1."""
    stdin = ("hola\n" + "palabra " * 10_000 + "\nadiós\n").encode()
    result = run_cli(["translate", "-m", tiny_model_dir, "--beam", "1"], stdin=stdin)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "too long" in result.stderr and "Traceback" not in result.stderr
    result = run_cli(["translate", "palabra " * 10_000, "-m", tiny_model_dir])
    assert_one_line_error(result, ["too long"])
