"""Training arithmetic per CPU (--train-precision) and option names in messages."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from attncli import hardware, machine
from attncli.batch import make_batch
from attncli.config import TrainConfig
from attncli.errors import OptionError
from attncli.model import Seq2Seq
from attncli.training import TrainingInterrupted, train, train_step
from attncli.training_precision import loss_scaler, resolve_train_precision
from conftest import assert_one_line_error

NUMBERS = TrainConfig(vocab_size=40, embed_size=16, hidden_size=16, dropout=0.1, batch_tokens=150, epochs=5,
                      warmup_steps=5, learning_rate=0.02, patience=10, threads=1, seed=5, valid_every=6,
                      fp16_weights=False, tied_output=False)


@pytest.mark.parametrize("bf16_matmul, expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_follows_the_cpu(monkeypatch, bf16_matmul, expected):
    monkeypatch.setattr("attncli.training_precision.has_bf16_matmul", lambda: bf16_matmul)
    assert resolve_train_precision("auto") == expected
    assert resolve_train_precision("float32") == "float32" and resolve_train_precision("bfloat16") == "bfloat16"


def test_cpu_flags_are_read_from_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example Xeon\nflags\t\t: fpu avx512f amx_bf16 amx_int8\n\n"
                       "processor\t: 1\nmodel name\t: Example Xeon\nflags\t\t: fpu\n")
    real_path = hardware.Path
    monkeypatch.setattr(hardware, "Path", lambda path: cpuinfo if path == "/proc/cpuinfo" else real_path(path))
    monkeypatch.setattr(hardware, "is_x86", lambda: True)
    hardware.cpu_info.cache_clear()
    try:
        assert hardware.cpu_info() == ("Example Xeon", frozenset({"fpu", "avx512f", "amx_bf16", "amx_int8"}))
        assert hardware.has_bf16_matmul() and hardware.has_int8_sum32()
    finally:
        hardware.cpu_info.cache_clear()


def test_machine_report_names_the_paths():
    report = machine.machine_report()
    assert report["int8_kernel"] in ("onednn", "onednn-sums+bias", "emulated")
    assert report["train_precision_auto"] in ("float32", "bfloat16")
    assert report["cpu"] in machine.format_machine_report(report)


def test_bfloat16_run_is_recorded_and_learns(numbers, tmp_path):
    events = []
    result = train(numbers[0], numbers[1], tmp_path / "m", replace(NUMBERS, train_precision="bfloat16"), on_event=events.append)
    assert result.precision == "bfloat16"
    assert {event.precision for event in events if event.kind == "step"} == {"bfloat16"}
    info = json.loads((tmp_path / "m" / "config.json").read_text())["info"]
    assert info["training_precision"] == "bfloat16"
    assert {record["precision"] for record in info["history"]} == {"bfloat16"}
    assert result.history[-1]["dev_loss"] < result.history[0]["dev_loss"]
    weights = load_file(tmp_path / "m" / "model.safetensors")
    assert all(tensor.dtype == torch.float32 for tensor in weights.values())   # float32 master weights
    train(numbers[0], numbers[1], tmp_path / "f", replace(NUMBERS, train_precision="float32"))
    float32_weights = load_file(tmp_path / "f" / "model.safetensors")
    assert not torch.equal(weights["decoder.output.weight"], float32_weights["decoder.output.weight"])   # other arithmetic


def test_bfloat16_resumes_exactly_with_its_own_precision(numbers, tmp_path, monkeypatch):
    """Interrupted at update 8 and resumed with `auto` on a CPU whose auto is float32: the run
    keeps its bfloat16 arithmetic and ends bit-equal to the uninterrupted bfloat16 run."""
    config = replace(NUMBERS, train_precision="auto")
    monkeypatch.setattr("attncli.training_precision.has_bf16_matmul", lambda: True)
    reference = train(numbers[0], numbers[1], tmp_path / "ref", config)

    def stop_at_8(event):
        if event.kind == "step" and event.step == 8:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(numbers[0], numbers[1], tmp_path / "m", config, on_event=stop_at_8)
    monkeypatch.setattr("attncli.training_precision.has_bf16_matmul", lambda: False)
    resumed = train(numbers[0], numbers[1], tmp_path / "m", config, resume=True)
    assert resumed.precision == reference.precision == "bfloat16"
    assert [r["dev_loss"] for r in resumed.history] == [r["dev_loss"] for r in reference.history]
    expected, got = load_file(tmp_path / "ref" / "model.safetensors"), load_file(tmp_path / "m" / "model.safetensors")
    assert all(torch.equal(got[name], tensor) for name, tensor in expected.items())


@pytest.mark.parametrize("option, value, named", [
    ("--beam", "0", "--beam"), ("--train-precision", "int4", "--train-precision"),
    ("--vocab-size", "5", "--vocab-size"), ("--dropout", "1.5", "--dropout")])
def test_train_errors_name_the_option_typed(run_cli, numbers, tmp_path, option, value, named):
    result = run_cli(["train", numbers[0], "--dev", numbers[1], "--out", tmp_path / "m", option, value])
    assert_one_line_error(result, named, code=None)
    assert not (tmp_path / "m").exists()


def test_float16_training_is_a_gpu_s_and_refused_on_the_cpu(run_cli, numbers, tmp_path):
    with pytest.raises(OptionError, match="float16 runs on a GPU only"):
        resolve_train_precision("float16", torch.device("cpu"))
    result = run_cli(["train", numbers[0], "--out", tmp_path / "m", "--train-precision", "float16"])
    assert_one_line_error(result, "--train-precision float16", "GPU")


def test_the_gradient_scaler_of_float16_changes_no_update():
    """float16 training scales the loss and unscales the gradients before clipping (train_step);
    with powers of two that is exact, so a scaled float32 update equals a plain one bit for bit."""
    config = replace(TrainConfig(), dropout=0.0, label_smoothing=0.1, clip_norm=0.5)
    model_config = config.model_config(40, 40)
    runs = []
    for scaler in (None, loss_scaler("float16", torch.device("cpu"))):
        torch.manual_seed(3)
        model = Seq2Seq(replace(model_config, embed_size=16, hidden_size=16))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for step in range(3):
            torch.manual_seed(step)
            batch = make_batch([torch.randint(4, 40, (n,)).tolist() for n in (5, 3, 7)],
                               [torch.randint(4, 40, (n,)).tolist() for n in (4, 6, 2)])
            train_step(model, optimizer, batch, config, "float32", 0.01, scaler=scaler)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])


def test_a_saved_scaler_continues_where_it_was():
    scaler = loss_scaler("float16", torch.device("cpu"), scale=1024.0, growth=7)
    assert (scaler.get_scale(), scaler.state_dict()["_growth_tracker"]) == (1024.0, 7)
    assert loss_scaler("bfloat16", torch.device("cpu")) is None and loss_scaler("float32", torch.device("cpu")) is None


@pytest.mark.filterwarnings("ignore:.*CUDA is not available")      # built for CUDA on a machine without it
def test_bfloat16_on_a_gpu_gets_a_scaler_too():
    """cuDNN's autocast wrapper runs the LSTMs in float16 under a bfloat16 autocast as well."""
    assert isinstance(loss_scaler("bfloat16", torch.device("cuda")), torch.amp.GradScaler)
    assert loss_scaler("float32", torch.device("cuda")) is None
