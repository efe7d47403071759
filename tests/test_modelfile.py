"""Model folders: exact round trip, no pickle anywhere, every kind of broken folder refused (by
load_model, and by every command in one stderr line), and kill -9 during a save leaves a loadable one."""

import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import time

import pytest
import torch
from conftest import SUBPROCESS_ENV, assert_one_line_error

from attncli.alignment import read_link_defaults
from attncli.batch import make_batch
from attncli.errors import ModelFileError
from attncli.modelfile import load_model, save_model, search_defaults


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


@pytest.mark.parametrize("layers,input_feeding,tied,lexical", [(1, False, False, False), (2, True, False, True),
                                                              (3, False, True, False), (1, False, True, True)])
def test_parameter_shapes_match_a_built_model(layers, input_feeding, tied, lexical):
    from attncli.config import ModelConfig
    from attncli.model import Seq2Seq

    config = ModelConfig(src_vocab_size=50, tgt_vocab_size=60, embed_size=16 if not tied else 12, hidden_size=12,
                         encoder_layers=layers, decoder_layers=layers, input_feeding=input_feeding, tied_output=tied,
                         lexical_model=lexical)
    built = {name: tuple(t.shape) for name, t in Seq2Seq(config).state_dict().items()}
    assert config.parameter_shapes() == built


def test_model_folder_holds_no_pickle(tiny_model_dir, monkeypatch):
    """Each file is read whole by a parser of a format that holds no code, and loading the folder
    never calls an unpickler."""
    import sentencepiece

    names = sorted(os.listdir(tiny_model_dir))
    assert names == ["config.json", "model.safetensors", "source-words.txt", "spm.model"]
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
    # source-words.txt: UTF-8 text, a word per line
    assert all(word and word.strip() == word for word in (tiny_model_dir / "source-words.txt").read_text("utf-8").splitlines())

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


def test_a_safetensors_header_size_that_starts_like_a_pickle_loads(model_copy):
    """A header of 0x..80 bytes makes a safetensors file begin with byte 0x80, pickle's mark: the
    "{" after the size tells them apart (a model with the lexical model's tensors hit this)."""
    from safetensors.torch import load_file, save_file

    path = model_copy / "model.safetensors"
    tensors = load_file(str(path))
    for padding in range(256):
        save_file(tensors, str(path), metadata={"padding": "x" * padding})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert load_model(model_copy).model.num_parameters() > 0


# Every kind of broken model folder, one catalogue: (name, damage(folder), words the error names).
# load_model must refuse each with a ModelFileError, and every command one line on stderr.

def edit_config(change):
    def damage(folder):
        document = json.loads((folder / "config.json").read_text())
        change(document)
        (folder / "config.json").write_text(json.dumps(document))
    return damage


def write_other_spm(folder):
    from attncli.tokenizer import Tokenizer

    other = Tokenizer.train(["uno dos tres cuatro", "one two three four"] * 50, vocab_size=40)
    (folder / "spm.model").write_bytes(other.model_proto)


def truncate_weights(folder):
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) * 2 // 3])


def cut_config(folder):
    (folder / "config.json").write_text((folder / "config.json").read_text()[:-20])


BROKEN_MODELS = [
    ("no-spm", lambda folder: (folder / "spm.model").unlink(), ["spm.model", "missing"]),
    ("garbage-spm", lambda folder: (folder / "spm.model").write_bytes(b"garbage"), ["spm.model", "corrupt"]),
    ("other-spm", write_other_spm, ["SentencePiece", "not the one"]),
    ("no-config", lambda folder: (folder / "config.json").unlink(), ["config.json", "not a model folder"]),
    ("bad-json", cut_config, ["config.json", "not valid JSON"]),
    ("no-weights", lambda folder: (folder / "model.safetensors").unlink(), ["model.safetensors", "missing"]),
    ("truncated", truncate_weights, ["model.safetensors", "truncated"]),
    ("header-only", lambda folder: (folder / "model.safetensors").write_bytes((10**12).to_bytes(8, "little") + b"{"),
     ["model.safetensors"]),
    ("pickle", lambda folder: (folder / "model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]})),
     ["model.safetensors", "pickle"]),
    ("vocab", edit_config(lambda d: d["model"].update(src_vocab_size=d["model"]["src_vocab_size"] + 1)),
     ["vocabulary", "does not match"]),
    ("huge", edit_config(lambda d: d["model"].update(hidden_size=10**9)), ["config.json", "hidden_size"]),
    ("other-size", edit_config(lambda d: d["model"].update(hidden_size=4096)),
     ["model.safetensors", "do not match config.json"]),
    ("unknown-key", edit_config(lambda d: d["model"].update(colour="blue")), ["config.json", "colour"]),
    ("misspelt-key", edit_config(lambda d: d["model"].update(hidden_sise=3)), ["config.json", "hidden_sise"]),
    ("version", edit_config(lambda d: d.update(format_version=99)), ["config.json", "format_version"]),
    ("not-object", edit_config(lambda d: d.update(model=[1, 2])), ["config.json", "'model'"]),
    ("bad-defaults", edit_config(lambda d: d["info"].update(defaults={"beam_size": "five", "length_penalty": 1.0})),
     ["config.json", "beam_size"]),
    ("bad-link-settings", edit_config(lambda d: d["info"].update(
        alignment_links={"min_weight": "high", "mutual": True, "attention_shift": 0})), ["config.json", "alignment_links"]),
]


def load_everything(folder):
    """What every command reads of a model folder: the model, and its search and link defaults."""
    loaded = load_model(folder)
    search_defaults(loaded.info)
    read_link_defaults(loaded.info)
    return loaded


@pytest.mark.parametrize("damage,words", [case[1:] for case in BROKEN_MODELS], ids=[case[0] for case in BROKEN_MODELS])
def test_broken_model_folders_are_refused(model_copy, damage, words):
    damage(model_copy)
    with pytest.raises(ModelFileError) as refused:
        load_everything(model_copy)
    assert all(word in str(refused.value) for word in words), (words, str(refused.value))


@pytest.mark.parametrize("command", ["translate", "evaluate", "alignment"])
@pytest.mark.parametrize("damage,words", [case[1:] for case in BROKEN_MODELS], ids=[case[0] for case in BROKEN_MODELS])
def test_broken_model_folders_are_one_line_errors(run_cli, model_copy, corpus_files, command, damage, words):
    damage(model_copy)
    args = {"translate": ["translate", "hola", "-m", model_copy],
            "evaluate": ["evaluate", corpus_files[1], "-m", model_copy],
            "alignment": ["inspect", "alignment", "hola", "-m", model_copy]}[command]
    assert_one_line_error(run_cli(args), *words)


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
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                          # its PID now names no running process
    for name in (f".m.tmp-{dead.pid}", f".m.old-{dead.pid}", f".m.tmp-{os.getppid()}", ".other.tmp-1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"partial")
    loaded = load_model(tiny_model_dir)
    save_model(tmp_path / "m", loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m", f".m.tmp-{os.getppid()}", ".other.tmp-1"])


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
