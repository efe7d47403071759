"""Model folders: exact round trip, no pickle anywhere, and every kind of bad file refused."""

import json
import os
import pickle
import shutil

import pytest
import torch

from attncli.batch import make_batch
from attncli.errors import ModelFileError
from attncli.modelfile import load_model, save_model


def logits_of(loaded, sentence="¿Dónde está el perro?"):
    ids = loaded.src_tokenizer.encode(sentence)
    batch = make_batch([ids], [[5, 6, 7]])
    with torch.no_grad():
        return loaded.model(batch.src_ids, batch.src_lengths, batch.tgt_in)[0]


def test_save_then_load_gives_identical_outputs(tiny_model_dir, tmp_path):
    first = load_model(tiny_model_dir)
    save_model(tmp_path / "copy", first.model, first.src_tokenizer, first.tgt_tokenizer, first.info)
    second = load_model(tmp_path / "copy")
    assert torch.equal(logits_of(first), logits_of(second))


@pytest.mark.parametrize("layers,input_feeding,tied", [(1, False, False), (2, True, False), (3, False, True)])
def test_parameter_shapes_match_a_built_model(layers, input_feeding, tied):
    from attncli.config import ModelConfig
    from attncli.model import Seq2Seq

    config = ModelConfig(src_vocab_size=50, tgt_vocab_size=60, embed_size=16 if not tied else 12, hidden_size=12,
                         encoder_layers=layers, decoder_layers=layers, input_feeding=input_feeding, tied_output=tied)
    built = {name: tuple(t.shape) for name, t in Seq2Seq(config).state_dict().items()}
    assert config.parameter_shapes() == built


def test_model_folder_holds_no_pickle(tiny_model_dir, monkeypatch):
    """Each file is read whole by a parser of a format that holds no code, and loading the folder
    never calls an unpickler."""
    import sentencepiece

    names = sorted(os.listdir(tiny_model_dir))
    assert names == ["config.json", "model.safetensors", "spm.model"]
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["format"] == "attncli-model"
    # model.safetensors: an 8-byte header size, a JSON header, then the tensors' bytes back to back, nothing else
    data = (tiny_model_dir / "model.safetensors").read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8: 8 + header_size])
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    spans = sorted(entry["data_offsets"] for entry in tensors.values())
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert 8 + header_size + spans[-1][1] == len(data)
    assert {entry["dtype"] for entry in tensors.values()} <= {"F32", "F16", "BF16"}
    # spm.model: a SentencePiece protobuf of the configured vocabulary
    spm = sentencepiece.SentencePieceProcessor(model_proto=(tiny_model_dir / "spm.model").read_bytes())
    assert spm.get_piece_size() == config["model"]["src_vocab_size"] == config["model"]["tgt_vocab_size"]

    def refuse(*args, **kwargs):
        raise AssertionError("a model folder was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_model(tiny_model_dir)
    state = loaded.model.state_dict()
    assert set(tensors) <= set(state) and all(list(state[name].shape) == tensors[name]["shape"] for name in tensors)


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_a_pickle_as_weights_is_refused_and_never_runs(model_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (model_copy / "model.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(model_copy)
    torch.save({"weights": Payload()}, model_copy / "model.safetensors")
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(model_copy)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def break_truncate(folder):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def break_config_key(folder):
    config = json.loads((folder / "config.json").read_text())
    config["model"]["hidden_sise"] = 3
    (folder / "config.json").write_text(json.dumps(config))


def break_config_size(folder):
    config = json.loads((folder / "config.json").read_text())
    config["model"]["hidden_size"] = 4096
    (folder / "config.json").write_text(json.dumps(config))


def break_config_json(folder):
    (folder / "config.json").write_text("{not json")


def break_spm(folder):
    (folder / "spm.model").write_bytes(b"garbage")


def break_other_spm(folder):
    from attncli.tokenizer import Tokenizer

    other = Tokenizer.train(["uno dos tres cuatro", "one two three four"] * 50, vocab_size=40)
    (folder / "spm.model").write_bytes(other.model_proto)


def remove_weights(folder):
    (folder / "model.safetensors").unlink()


@pytest.mark.parametrize("breakage", [break_truncate, break_config_key, break_config_size, break_config_json,
                                      break_spm, break_other_spm, remove_weights])
def test_broken_model_folders_are_refused(model_copy, breakage):
    breakage(model_copy)
    with pytest.raises(ModelFileError):
        load_model(model_copy)


def test_saving_replaces_an_old_model_atomically(tiny_model_dir, tmp_path):
    loaded = load_model(tiny_model_dir)
    target = tmp_path / "m"
    save_model(target, loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer, {"n": 1})
    save_model(target, loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer, {"n": 2})
    assert load_model(target).info == {"n": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]     # no temporary folders left behind


def test_saving_removes_work_folders_of_killed_saves(tiny_model_dir, tmp_path):
    """A save killed mid-way (SIGKILL, power loss) leaves .NAME.tmp-PID; the next save removes it,
    but never the work folder of a process that still runs (it may be saving right now)."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                          # its PID now names no running process
    for name in (f".m.tmp-{dead.pid}", f".m.old-{dead.pid}", f".m.tmp-{os.getppid()}", ".other.tmp-1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"partial")
    loaded = load_model(tiny_model_dir)
    save_model(tmp_path / "m", loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m", f".m.tmp-{os.getppid()}", ".other.tmp-1"])
