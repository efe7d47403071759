"""`train --out`: an existing model is replaced only with --overwrite; one run at a time."""

from __future__ import annotations

import fcntl
import os
from dataclasses import replace

import pytest

from attncli.errors import OptionError
from attncli.run_lock import lock_path_for, run_lock
from attncli.training import train
from conftest import TINY, assert_one_line_error

QUICK = replace(TINY, epochs=1)


def test_an_existing_model_is_not_replaced_without_overwrite(run_cli, corpus_files, tmp_path):
    out = tmp_path / "m"
    train(corpus_files[0], corpus_files[1], out, QUICK)
    before = (out / "model.safetensors").read_bytes()
    result = run_cli(["train", corpus_files[0], "--dev", corpus_files[1], "--out", out, "--epochs", "1"])
    assert_one_line_error(result, str(out), "--overwrite", code=1)
    assert (out / "model.safetensors").read_bytes() == before
    replaced = train(corpus_files[0], corpus_files[1], out, replace(QUICK, seed=9), overwrite=True)
    assert replaced.best_step > 0 and (out / "model.safetensors").read_bytes() != before


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(corpus_files, tmp_path):
    out = tmp_path / "m"
    with run_lock(out):
        with pytest.raises(OptionError, match=f"pid {os.getpid()}"):
            train(corpus_files[0], corpus_files[1], out, QUICK)
    assert not out.exists()
    train(corpus_files[0], corpus_files[1], out, QUICK)        # released: the folder is free again
    assert (out / "config.json").is_file()


def test_the_lock_is_released_and_removed_when_its_holder_ends(tmp_path):
    out = tmp_path / "m"
    with run_lock(out):
        descriptor = os.open(lock_path_for(out), os.O_RDWR)
        with pytest.raises(OSError):
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert not lock_path_for(out).exists()
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)        # free now
    os.close(descriptor)
    lock_path_for(out).write_text("pid 1 on a host that died")    # left by a killed run
    with run_lock(out):
        assert str(os.getpid()) in lock_path_for(out).read_text()


def test_overwrite_starts_over_a_run_stopped_by_its_time_limit(corpus_files, tmp_path):
    out = tmp_path / "m"
    stopped = train(corpus_files[0], corpus_files[1], out, replace(QUICK, max_minutes=0.001))
    assert stopped.state_dir is not None and stopped.state_dir.is_dir()
    with pytest.raises(OptionError, match="--overwrite"):
        train(corpus_files[0], corpus_files[1], out, QUICK)
    again = train(corpus_files[0], corpus_files[1], out, QUICK, overwrite=True)
    assert again.state_dir is None and not stopped.state_dir.exists()
