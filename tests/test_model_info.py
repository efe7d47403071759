"""The model card (config.json's `info`) as one typed object: ModelInfo, its layout on disk, its
one-line errors, and the option checks that share its ranges."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import assert_one_line_error

from attncli.alignment import read_link_defaults
from attncli.errors import ModelFileError, OptionError
from attncli.model_info import INFO_KEYS, LinkSettings, ModelInfo, SearchDefaults
from attncli.modelfile import (MODELS_DIR, load_model, read_model_folder, read_model_info, save_model,
                               search_defaults, store_link_defaults)

SHIPPED = ["es-en", "fr-en"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_cards_come_back_byte_for_byte(name):
    """Read and written again, a shipped config.json is the same bytes: keys, order, values."""
    raw = (MODELS_DIR / name / "config.json").read_text(encoding="utf-8")
    document = json.loads(raw)
    card = ModelInfo.from_dict(document["info"])
    assert card.extra == {}                          # every key of a shipped card is a typed field
    rewritten = json.dumps(dict(document, info=card.to_dict()), indent=2, ensure_ascii=False) + "\n"
    assert rewritten == raw


def test_shipped_defaults_as_typed_values():
    es_en, fr_en = (read_model_folder(MODELS_DIR / name).model_info for name in SHIPPED)
    assert es_en.search == SearchDefaults(5, 1.0) and es_en.alignment_links is None
    assert es_en.links == LinkSettings(0.0, False, 0)
    assert fr_en.links == LinkSettings(0.4, True, 0)
    assert fr_en.links_measured["gold"] == "hansards-fr-en/dev.align" and fr_en.links_measured["aer"] == 0.1305
    assert fr_en.dev == "None" and fr_en.guide_alignments.endswith(".gdfa")   # as the file has them
    assert len(fr_en.history) == 6 and fr_en.best["step"] == 4266
    # the runtimes' entry points read the same object, from its JSON form or itself
    assert search_defaults(fr_en) == search_defaults(fr_en.to_dict()) == (5, 1.0)
    assert read_link_defaults(fr_en.to_dict()) == read_link_defaults(fr_en) == fr_en.links


def test_training_writes_every_key_in_order(tiny_model_dir):
    info = json.loads((tiny_model_dir / "config.json").read_text())["info"]
    # text: raw, none; watch: no --watch
    assert list(info) == [key for key in INFO_KEYS if key not in ("alignment_links", "text", "watch")]
    assert info["defaults"] == {"beam_size": info["train_config"]["beam"],
                                "length_penalty": info["train_config"]["length_penalty"]}
    assert info["guide_alignments"] is None and info["init_from"] is None      # null: none was given
    assert info["best"]["step"] in {record["step"] for record in info["history"]}
    card = read_model_info(tiny_model_dir)
    assert card.training_precision in ("float32", "bfloat16") and card.history == info["history"]


def test_unknown_keys_survive_storing_link_settings(tiny_model_dir, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    config = model / "config.json"
    document = json.loads(config.read_text())
    document["info"]["notes"] = {"by": "hand", "keep": [1, 2]}
    config.write_text(json.dumps(document))
    store_link_defaults(model, min_weight=0.25, mutual=False, attention_shift=1, measured={"aer": 0.3})
    stored = json.loads(config.read_text())["info"]
    assert stored.pop("alignment_links") == {"min_weight": 0.25, "mutual": False, "attention_shift": 1,
                                             "measured": {"aer": 0.3}}
    assert stored == document["info"]
    store_link_defaults(model, min_weight=0.5, mutual=True, attention_shift=0)     # no measurement: none kept
    assert json.loads(config.read_text())["info"]["alignment_links"] == {"min_weight": 0.5, "mutual": True,
                                                                         "attention_shift": 0}
    with pytest.raises(ModelFileError, match="alignment_links"):
        store_link_defaults(model, min_weight=2.0, mutual=True, attention_shift=0)


def test_save_model_writes_the_card_it_is_given(tiny_model_dir, tmp_path):
    loaded = load_model(tiny_model_dir)
    card = ModelInfo.from_dict(json.loads((MODELS_DIR / "fr-en" / "config.json").read_text())["info"])
    save_model(tmp_path / "m", loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer, card)
    again = load_model(tmp_path / "m")
    assert again.model_info == card
    assert again.info == card.to_dict()
    again.info["defaults"]["beam_size"] = 99               # `info` is a copy: the card does not change
    assert again.model_info.search.beam_size == 5
    save_model(tmp_path / "n", loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer, {"n": 1})
    assert json.loads((tmp_path / "n" / "config.json").read_text())["info"] == {"n": 1}


BAD_CARDS = [
    ({"defaults": {"beam_size": "five", "length_penalty": 1.0}}, "info.defaults"),
    ({"defaults": {"beam_size": 0}}, "info.defaults"),
    ({"defaults": {"beam_size": True}}, "info.defaults"),
    ({"defaults": {"length_penalty": float("nan")}}, "info.defaults"),
    ({"defaults": 5}, "info.defaults"),
    ({"alignment_links": {"min_weight": "high", "mutual": True, "attention_shift": 0}}, "info.alignment_links"),
    ({"alignment_links": {"min_weight": 1.5, "mutual": True, "attention_shift": 0}}, "info.alignment_links"),
    ({"alignment_links": {"min_weight": 0.5, "mutual": "yes", "attention_shift": 0}}, "info.alignment_links"),
    ({"alignment_links": {"min_weight": 0.5, "mutual": True, "attention_shift": 2}}, "info.alignment_links"),
    ({"alignment_links": {"min_weight": 0.5, "mutual": True}}, "info.alignment_links"),
    ({"alignment_links": {"min_weight": 0.5, "mutual": True, "attention_shift": 0, "measured": 3}},
     "info.alignment_links.measured"),
    ({"history": "x"}, "info.history"),
    ({"history": [1, 2]}, "info.history"),
    ({"best": [1]}, "info.best"),
    ({"train_config": "big"}, "info.train_config"),
    ({"corpus": 3}, "info.corpus"),
    ({"training_seconds": True}, "info.training_seconds"),
    ({"training_precision": 16}, "info.training_precision"),
]


@pytest.mark.parametrize("info,field", BAD_CARDS, ids=[f"{case[1]}-{n}" for n, case in enumerate(BAD_CARDS)])
def test_a_bad_value_names_config_json_and_the_field(info, field):
    with pytest.raises(ModelFileError) as caught:
        ModelInfo.from_dict(info)
    message = str(caught.value)
    assert message.startswith(f"config.json: {field}") and "\n" not in message, message


def test_info_must_be_an_object():
    with pytest.raises(ModelFileError, match="'info' must be an object"):
        ModelInfo.from_dict([1])
    assert ModelInfo.from_dict(None) == ModelInfo() and ModelInfo().to_dict() == {}


@pytest.mark.parametrize("command", ["translate", "alignment"])
def test_a_bad_card_is_a_one_line_error_before_any_work(run_cli, tiny_model_dir, tmp_path, command):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    document = json.loads((model / "config.json").read_text())
    document["info"]["history"] = "lost"
    (model / "config.json").write_text(json.dumps(document))
    args = ["translate", "hola"] if command == "translate" else ["inspect", "alignment", "hola"]
    assert_one_line_error(run_cli([*args, "-m", model]), "config.json", "info.history", code=1)


def test_link_options_override_the_tuned_settings_and_share_their_ranges():
    tuned = LinkSettings(0.4, True, 0)
    assert tuned.overridden() == tuned
    assert tuned.overridden(min_weight=0.0, mutual=False) == LinkSettings(0.0, False, 0)
    assert tuned.overridden(attention_shift=1) == LinkSettings(0.4, True, 1)
    with pytest.raises(OptionError, match=r"^--min-weight must be from 0 to 1, got 1.5\.$"):
        tuned.overridden(min_weight=1.5)
    with pytest.raises(OptionError, match=r"^--shift must be 0 or 1, got 2\.$"):
        tuned.overridden(attention_shift=2)


@pytest.mark.parametrize("option,value", [("--min-weight", "1.5"), ("--min-weight", "-0.1"), ("--shift", "2")])
def test_bad_link_options_are_refused_before_the_model_is_read(run_cli, tmp_path, option, value):
    """No such model folder: the option's error comes first, so the check ran before loading."""
    result = run_cli(["inspect", "alignment", "hola", "-m", tmp_path / "missing", option, value])
    assert_one_line_error(result, option, code=1)


@pytest.mark.parametrize("command", ["translate", "evaluate", "alignment"])
@pytest.mark.parametrize("beam", ["101", "0"])
def test_beam_out_of_range_is_a_user_error(run_cli, tiny_model_dir, corpus_files, command, beam):
    """The README's exit status 1 for a bad value; 2 is only for a malformed command line."""
    args = {"translate": ["translate", "hola"], "evaluate": ["evaluate", corpus_files[1]],
            "alignment": ["inspect", "alignment", "hola"]}[command]
    assert_one_line_error(run_cli([*args, "-m", tiny_model_dir, "--beam", beam]),
                          f"--beam must be from 1 to 100, got {beam}.", code=1)
    assert run_cli(["translate", "hola", "--beam", "five"]).exit_code == 2


def test_precision_choices_are_config_precisions():
    """cli.Precision is built from config.PRECISIONS: a precision added there is an option value."""
    script = ("import attncli.config as config; config.PRECISIONS = ('auto', 'int8', 'float32', 'int4'); "
              "from attncli.cli import Precision; print(' '.join(p.value for p in Precision))")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["auto", "int8", "float32", "int4"]
