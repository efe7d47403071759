"""Installed anywhere: a non-editable install carries the shipped models and translates from any
working directory; saved model and training-state files get the same modes as any file (umask)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from attncli.checkpoint import Progress, TrainState, save_train_state
from attncli.modelfile import MODELS_ENV, load_model, save_model

from conftest import SUBPROCESS_ENV

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    """Permission bits of a folder and of every file in it."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    found.update({child.name: stat.S_IMODE(child.stat().st_mode) for child in folder.iterdir()})
    return found


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)],
                         ids=["umask-022", "umask-077"])
def test_saved_files_respect_the_umask(tiny_model_dir, tmp_path, umask, mask, file_mode, dir_mode):
    loaded = load_model(tiny_model_dir)
    state = TrainState(fingerprint={}, model_config=loaded.model.config.to_dict(), progress=Progress(),
                       model_state=loaded.model.state_dict(), optimizer_state={}, torch_rng=torch.get_rng_state(),
                       src_spm=loaded.src_tokenizer.model_proto, tgt_spm=loaded.tgt_tokenizer.model_proto)
    umask(mask)
    model_dir = save_model(tmp_path / "model", loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer)
    state_dir = save_train_state(tmp_path / "model.train-state", state)
    for folder, weights in ((model_dir, "model.safetensors"), (state_dir, "state.safetensors")):
        found = modes(folder)
        assert weights in found and len(found) > 2, found
        assert found == {".": dir_mode, **{name: file_mode for name in found if name != "."}}, (folder, found)


def copy_sources(destination: Path) -> Path:
    """The files a build needs, copied (building in the checkout would leave build/ in it)."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, destination / name)
    for name in ("attncli", "models"):
        shutil.copytree(REPO / name, destination / name, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return destination


def test_non_editable_install_translates_with_the_shipped_model(tmp_path, run_cli):
    """`pip install .` into a target folder (no dependencies: this venv has them), then attncli from
    that folder, in a directory far from the checkout, with no user models: the shipped models,
    translating as the checkout's models/ folders do."""
    source, target, elsewhere = copy_sources(tmp_path / "src"), tmp_path / "site", tmp_path / "elsewhere"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True)
    shutil.rmtree(source)                     # nothing may be read from the sources any more
    elsewhere.mkdir()
    env = {**SUBPROCESS_ENV, "PYTHONPATH": str(target), "XDG_DATA_HOME": str(elsewhere / "data"),
           "HOME": str(elsewhere)}
    env.pop(MODELS_ENV, None)

    def attncli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "attncli", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", (done.returncode, done.stderr)
        return done.stdout

    listed = {entry["name"]: entry for entry in json.loads(attncli("models", "--json"))}
    assert set(listed) == {"es-en", "fr-en"}, listed
    for entry in listed.values():
        assert entry["place"] == "shipped" and Path(entry["path"]).is_relative_to(target / "attncli"), entry
    for name, sentence in (("es-en", "Hola"), ("fr-en", "je ai faim .")):
        expected = run_cli(["translate", "--model", REPO / "models" / name, sentence]).stdout
        assert expected.strip() and attncli("translate", "--model", name, sentence) == expected, name
    assert attncli("translate", "Hola") == run_cli(["translate", "Hola"]).stdout    # es-en, the default
