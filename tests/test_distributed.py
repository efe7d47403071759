"""Training with several processes (torchrun, gloo on the CPU): two processes with --batch-tokens B
train the model one process trains with 2B; two "machines" (two launches with a c10d rendezvous)
train the model one launch of two processes trains; an interrupted run stops on every rank with one
saved state and resumes to the uninterrupted result; resuming with another number of processes
and a missing CUDA device are one-line errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SUBPROCESS_ENV, assert_one_line_error

from attncli.config import TrainConfig
from attncli.modelfile import load_model
from attncli.training import train

# float32 (bfloat16 rounds a half batch differently from a whole one), no dropout (the masks of
# one process and of two differ), float32 weights on disk (compared to 1e-5); subword sampling on
# (a pair is drawn alike whichever process has it)
OPTIONS = ["--vocab-size", "300", "--embed-size", "32", "--hidden-size", "32", "--dropout", "0", "--no-tied-output",
           "--warmup-steps", "10", "--learning-rate", "0.01", "--threads", "1", "--seed", "3", "--no-fp16-weights",
           "--train-precision", "float32", "--subword-sampling", "1.0"]
ONE_PROCESS = TrainConfig(vocab_size=300, embed_size=32, hidden_size=32, dropout=0.0, tied_output=False, warmup_steps=10,
                          learning_rate=0.01, threads=1, seed=3, fp16_weights=False, train_precision="float32",
                          batch_tokens=1200, epochs=2, subword_sampling=1.0)


def attncli(*args, env: dict[str, str] = SUBPROCESS_ENV) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "attncli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def weights(folder: Path) -> dict[str, np.ndarray]:
    return {name: tensor.numpy() for name, tensor in load_model(folder).model.state_dict().items()}


def largest_difference(first: Path, second: Path) -> float:
    a, b = weights(first), weights(second)
    return max(float(np.abs(a[name] - b[name]).max()) for name in a)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, corpus_files) -> Path:
    """A model trained by `attncli train --nproc 2` with --batch-tokens 600, 2 epochs (its temporary
    files in a folder of their own: torchrun's log folder must not be left there)."""
    folder, temporary = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("tmpdir")
    code, out, err = finished(attncli("train", corpus_files[0], "--dev", corpus_files[1], "--out", folder / "two",
                                      "--epochs", "2", "--batch-tokens", "600", "--nproc", "2", *OPTIONS,
                                      env={**SUBPROCESS_ENV, "TMPDIR": str(temporary)}))
    assert code == 0, err
    assert "model:" in out and out.count("model:") == 1          # one summary: rank 0's
    assert err.count("2 processes: each update reads 2 × 600 tokens") == 1
    assert [path.name for path in temporary.iterdir() if "torch" in path.name and "inductor" not in path.name] == []
    return folder / "two"


def test_two_processes_train_what_one_trains_with_the_doubled_batch(two_processes, corpus_files, tmp_path):
    train(corpus_files[0], corpus_files[1], tmp_path / "one", ONE_PROCESS)
    assert largest_difference(two_processes, tmp_path / "one") < 1e-5
    assert sorted(path.name for path in two_processes.parent.iterdir()) == ["two"]   # one folder, no state left


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_machines_train_what_one_launch_of_two_trains(two_processes, corpus_files, tmp_path):
    """Two torchrun launches (--nnodes 2, a c10d rendezvous on 127.0.0.1), as on two machines."""
    endpoint = f"127.0.0.1:{free_port()}"
    launches = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
         "--rdzv-endpoint", endpoint, "--rdzv-id", "test", "--log-dir", str(tmp_path / "logs"), "-m", "attncli", "train", str(corpus_files[0]),
         "--dev", str(corpus_files[1]), "--out", str(tmp_path / "nodes"), "--epochs", "2", "--batch-tokens", "600", *OPTIONS],
        env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [finished(launch) for launch in launches]
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert sum(out.count("model:") for _, out, _ in results) == 1
    assert largest_difference(tmp_path / "nodes", two_processes) < 1e-5


def test_an_interrupted_run_stops_every_process_and_resumes_exactly(corpus_files, tmp_path):
    """SIGINT to the launcher mid-run: every process ends (status 130), the state is saved once,
    and --resume with two processes ends with the uninterrupted run's model (dropout included:
    each rank's masks are seeded by update); resuming with one process is refused."""
    options = [option if option != "0" else "0.1" for option in OPTIONS]        # --dropout 0.1
    run = ["train", corpus_files[0], "--dev", corpus_files[1], "--epochs", "30", "--batch-tokens", "600",
           "--valid-every", "40", "--patience", "1000", *options]
    launcher = attncli(*run, "--nproc", "2", "--out", tmp_path / "stopped")
    for line in launcher.stderr:                      # the first validation: well inside the run
        if "dev loss" in line:
            break
    launcher.send_signal(signal.SIGINT)
    code, _, err = finished(launcher)
    assert code == 130, err
    assert err.count("interrupted at update") == 1, err
    assert (tmp_path / "stopped.train-state").is_dir()
    code, _, err = finished(attncli(*run, "--out", tmp_path / "stopped", "--resume"))
    assert code == 1 and "trained by 2 process(es), this run has 1" in err, err
    assert err.startswith("attncli: error:"), err                # refused before the data is read
    code, _, err = finished(attncli(*run, "--nproc", "2", "--out", tmp_path / "stopped", "--resume"))
    assert code == 0, err
    code, _, err = finished(attncli(*run, "--nproc", "2", "--out", tmp_path / "whole"))
    assert code == 0, err
    assert largest_difference(tmp_path / "stopped", tmp_path / "whole") == 0.0
    assert not (tmp_path / "stopped.train-state").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(run_cli, corpus_files, tmp_path):
    result = run_cli(["train", corpus_files[0], "--out", tmp_path / "m", "--device", "cuda"])
    assert_one_line_error(result, "--device cuda", "no CUDA GPU")
    result = run_cli(["train", corpus_files[0], "--out", tmp_path / "m", "--device", "tpu"])
    assert_one_line_error(result, "--device", "tpu")


def test_overwrite_starts_a_stopped_run_over_on_every_process(corpus_files, tmp_path):
    """--overwrite reaches every process and rank 0 alone removes the stopped run's state; the
    other processes used to refuse it while rank 0 waited for them."""
    (tmp_path / "m.train-state").mkdir()
    code, out, err = finished(attncli("train", corpus_files[0], "--dev", corpus_files[1], "--out", tmp_path / "m",
                                      "--epochs", "1", "--batch-tokens", "600", "--nproc", "2", "--overwrite", *OPTIONS))
    assert code == 0, err[-2000:]
    assert out.count("model:") == 1 and not (tmp_path / "m.train-state").exists()
