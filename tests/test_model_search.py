"""Where `--model NAME` looks (working directory, $ATTNCLI_MODELS, user data folder, shipped
models, in that order) and what `attncli models` lists."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from attncli import modelfile
from attncli.errors import ModelFileError
from attncli.model_list import find_models
from attncli.modelfile import MODELS_ENV, resolve_model_path

from conftest import assert_one_line_error


def fake_model(folder: Path, corpus: str | None = None, bleu: float | None = None, weights: int = 10) -> Path:
    """A folder with a readable config.json (model card only) and a weights file of `weights` bytes."""
    folder.mkdir(parents=True)
    best = {"dev_bleu": bleu} if bleu is not None else None
    document = {"format": "attncli-model", "format_version": 1, "info": {"corpus": corpus, "best": best}}
    (folder / "config.json").write_text(json.dumps(document), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\0" * weights)
    return folder


@pytest.fixture
def places(tmp_path, monkeypatch) -> dict[str, Path]:
    """Empty search places: the working directory, two $ATTNCLI_MODELS folders, user, shipped."""
    folders = {kind: tmp_path / kind for kind in ("cwd", "env1", "env2", "user", "shipped")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.chdir(folders["cwd"])
    monkeypatch.setenv(MODELS_ENV, os.pathsep.join([str(folders["env1"]), "", str(folders["env2"])]))
    monkeypatch.setattr(modelfile, "user_models_dir", lambda: folders["user"])
    monkeypatch.setattr(modelfile, "MODELS_DIR", folders["shipped"])
    return folders


def test_search_order_working_directory_env_user_shipped(places):
    order = ["cwd", "env1", "env2", "user", "shipped"]
    for kind in order:
        fake_model(places[kind] / "m")
    for kind in order:
        assert resolve_model_path("m").resolve() == (places[kind] / "m").resolve(), kind
        shutil.rmtree(places[kind] / "m")                    # next time the next place wins
    with pytest.raises(ModelFileError) as error:
        resolve_model_path("m")
    message = str(error.value)
    assert message.startswith("unknown model 'm': ") and "\n" not in message
    positions = [message.index(str(places[kind])) for kind in order]
    assert positions == sorted(positions), message           # where it looked, in search order


def test_search_path_lists_the_places_in_order(places):
    kinds = [place.kind for place in modelfile.model_search_path()]
    assert kinds == ["working directory", f"${MODELS_ENV}", f"${MODELS_ENV}", "user", "shipped"]


def test_folder_without_config_is_skipped_but_a_path_is_taken_as_given(places):
    (places["cwd"] / "m").mkdir()                            # e.g. a data folder named like a model
    fake_model(places["shipped"] / "m")
    assert resolve_model_path("m") == places["shipped"] / "m"
    (places["cwd"] / "only-here").mkdir()                    # nowhere else: loading it says what is missing
    assert resolve_model_path("only-here") == Path("only-here")
    assert resolve_model_path(places["env1"]) == places["env1"]    # a path is never searched
    with pytest.raises(ModelFileError, match="no such folder"):
        resolve_model_path(places["env1"] / "nothing")
    fake_model(places["env1"] / "x")
    with pytest.raises(ModelFileError, match=f"'{places['env1'] / 'x' / 'config.json'}' is a file, not a model folder "
                                             rf"\(one holding config.json\); give its folder, {places['env1'] / 'x'}\."):
        resolve_model_path(places["env1"] / "x" / "config.json")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG_DATA_HOME is the Linux rule")
def test_user_folder_follows_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert modelfile.user_models_dir() == tmp_path / "attncli" / "models"


def test_unknown_model_error_names_the_places(places, run_cli):
    result = run_cli(["translate", "hola", "--model", "nowhere"])
    assert_one_line_error(result, "unknown model 'nowhere'", *(str(places[kind]) for kind in places), code=1)


def test_listing_in_search_order_with_shadowing(places):
    fake_model(places["cwd"] / "es-en", corpus="/data/tatoeba-es-en/train.tsv", bleu=33.5, weights=1000)
    fake_model(places["env2"] / "de-en", corpus=None, bleu=None)
    fake_model(places["shipped"] / "es-en", corpus="/c/x.tsv", bleu=50.0)
    (places["user"] / "notes").mkdir()                       # no config.json: not a model
    broken = places["user"] / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    entries = find_models()
    assert [(e.name, e.place, e.shadowed) for e in entries] == [
        ("es-en", "working directory", False), ("de-en", f"${MODELS_ENV}", False),
        ("broken", "user", False), ("es-en", "shipped", True)]
    first, second, bad, hidden = entries
    assert first.languages == ("es", "en") and first.dev_bleu == 33.5
    assert first.size_bytes == 1000 + (places["cwd"] / "es-en" / "config.json").stat().st_size
    assert second.languages == ("de", "en") and second.dev_bleu is None      # from the folder name
    assert bad.problem and "not valid JSON" in bad.problem and bad.dev_bleu is None
    assert hidden.languages == ("es", "en") and hidden.dev_bleu == 50.0 and hidden.directory == places["shipped"] / "es-en"


def test_models_command_json_and_table(places, run_cli):
    fake_model(places["env1"] / "fr-en", corpus="/runs/fr-en-align.tsv", bleu=44.48, weights=2_000_000)
    fake_model(places["shipped"] / "fr-en")
    result = run_cli(["models", "--json"])
    assert result.exit_code == 0 and result.stderr == ""
    listed = json.loads(result.stdout)
    assert [(m["name"], m["place"], m["shadowed"]) for m in listed] == [
        ("fr-en", f"${MODELS_ENV}", False), ("fr-en", "shipped", True)]
    assert listed[0]["languages"] == ["fr", "en"] and listed[0]["dev_bleu"] == 44.48
    assert listed[0]["path"] == str(places["env1"] / "fr-en") and listed[0]["size_bytes"] > 2_000_000
    result = run_cli(["models"])
    assert result.exit_code == 0 and result.stderr == ""
    header, first, second = result.stdout.splitlines()
    assert header.split()[:2] == ["name", "languages"]
    assert first.split()[:5] == ["fr-en", "fr→en", "2.0", "MB", "44.48"]
    assert first.endswith(f"{places['env1'] / 'fr-en'} (${MODELS_ENV})")
    assert second.endswith("(shipped; shadowed by an earlier one)")


def test_shipped_models_are_listed():
    """Without the test's places: the real shipped folder holds es-en and fr-en."""
    shipped = {entry.name: entry for entry in find_models() if entry.place == "shipped"}
    assert {"es-en", "fr-en"} <= set(shipped)
    assert shipped["es-en"].languages == ("es", "en") and shipped["es-en"].dev_bleu is not None
