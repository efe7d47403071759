"""The resumable training state: everything `train(..., resume=True)` needs to continue a run
exactly where it stopped, as if it had never stopped.

It lives in a folder beside the model, `OUT.train-state/` for `--out OUT`:

  state.safetensors  model weights (float32), Adam's step/exp_avg/exp_avg_sq per parameter, the
                     kept best weights for --average-last, and torch's RNG state (uint8)
  state.json         position (epoch, batches done in it, update), learning-rate scale, best
                     scores, patience counter, validation history, elapsed time, model settings
                     and a fingerprint of the run (corpus and dev files, training options)
  spm.src.model, spm.tgt.model   the SentencePiece models (retraining them could differ)

Like a model folder it is built beside its place and swapped in atomically, and nothing in it
is unpickled: a damaged or hostile state is refused with a ModelFileError.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import TRAIN_PRECISIONS, ModelConfig, TrainConfig, option_name
from .errors import ModelFileError, OptionError
from .model import Seq2Seq
from .modelfile import settle_safetensors_file, write_bytes, atomic_dir, read_json_document
from .tokenizer import Tokenizer

STATE_FORMAT = "attncli-train-state"
STATE_VERSION = 1
TENSORS_FILE = "state.safetensors"
JSON_FILE = "state.json"
SRC_SPM_FILE = "spm.src.model"
TGT_SPM_FILE = "spm.tgt.model"
ADAM_KEYS = ("step", "exp_avg", "exp_avg_sq")
# Options that may change between an interrupted run and its resumption: they do not change
# what is computed (threads can change float rounding; --max-minutes could change the recipe's
# architecture for a new run, but a resumed run keeps the one it has: TrainConfig.resuming).
RESUMABLE_CHANGES = ("threads", "max_minutes")


@dataclass
class BestScores:
    """The best validation so far (dev BLEU first, then dev loss) and its update."""

    bleu: float = -1.0
    chrf: float = 0.0
    loss: float = math.inf
    step: int = 0


@dataclass
class Progress:
    """Where a run stands: `batches_done` batches of epoch `epoch` are trained, `step` updates in all.

    The actions that follow an update (validation, the time limit) may still be due at that
    point; a validation already recorded in `history` for `step` is not repeated. Saved in
    state.json field by field; with the tensors of TrainState it is everything --resume restores.
    """

    epoch: int = 1
    batches_done: int = 0
    step: int = 0
    lr_scale: float = 1.0
    bad_validations: int = 0
    best: BestScores = field(default_factory=BestScores)
    lowest_loss: float = math.inf       # the lowest dev loss so far (progress is judged on it too)
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    precision: str = "float32"          # training arithmetic, resolved (training_precision.py)
    processes: int = 1                  # training processes (torchrun ranks); --resume needs as many
    loss_scale: float = 0.0             # the gradient scaler (float16; bfloat16 on a GPU): its scale (0: no scaler) ...
    scale_growth: int = 0               # ... and its count of steps since the scale last changed


@dataclass
class TrainState:
    """A stopped run: its progress, the tensors it cannot be rebuilt without, and what it was run on."""

    fingerprint: dict[str, Any]
    model_config: dict[str, Any]
    progress: Progress
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[int, dict[str, torch.Tensor]]
    torch_rng: torch.Tensor
    src_spm: bytes
    tgt_spm: bytes
    best_states: list[dict[str, torch.Tensor]] = field(default_factory=list)


def state_dir_for(out_dir: Path | str) -> Path:
    """Where the training state of a run writing the model `out_dir` is kept: `OUT.train-state`."""
    out = Path(out_dir).absolute()
    return out.with_name(out.name + ".train-state")


def file_fingerprint(path: Path | str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    stat = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def run_fingerprint(corpus_path: Path | str, dev_path: Path | str | None, config: TrainConfig,
                    guide_path: Path | str | None = None, init_weights: Path | str | None = None) -> dict[str, Any]:
    """What must not change for a run to be resumed: the data files and the training options."""
    options = {key: value for key, value in config.to_dict().items() if key not in RESUMABLE_CHANGES}
    return {"corpus": file_fingerprint(corpus_path), "dev": file_fingerprint(dev_path),
            "guides": file_fingerprint(guide_path), "init_from": file_fingerprint(init_weights), "config": options}


def check_fingerprint(saved: dict[str, Any], current: dict[str, Any], state_dir: Path) -> None:
    """Refuse to resume a run with other data or options; the message names the first difference."""
    for side, what in (("corpus", "CORPUS"), ("dev", "--dev"), ("guides", "--guide-alignments"),
                       ("init_from", "--init-from")):
        if side not in saved:       # a state saved before attncli recorded this file
            continue
        old, new = saved.get(side), current[side]
        if old is None and new is None:
            continue
        if not isinstance(old, dict) or new is None:
            raise OptionError(f"--resume: {state_dir} was started {'with' if new is None else 'without'} {what}, "
                              f"unlike this run.")
        if old.get("path") != new["path"]:
            raise OptionError(f"--resume: {state_dir} was started with {what} {old.get('path')}, not {new['path']}.")
        if old.get("size") != new["size"] or old.get("mtime_ns") != new["mtime_ns"]:
            raise OptionError(f"--resume: {new['path']} has changed since the run started (size or modification time).")
    old_options, new_options = saved.get("config"), current["config"]
    if not isinstance(old_options, dict):
        raise OptionError(f"--resume: {state_dir} holds no training options to compare with.")
    for name in sorted(set(old_options) | set(new_options)):
        if name not in old_options or name not in new_options:
            raise OptionError(f"--resume: {state_dir} was saved by another version of attncli (its options differ: "
                              f"{option_name(name)}); delete the folder to start over.")
        if old_options[name] != new_options[name]:
            raise OptionError(f"--resume: {state_dir} was started with {option_name(name)} {_shown(old_options[name])}, "
                              f"not {_shown(new_options[name])}; resume with the same options or delete the folder.")


def _shown(value: Any) -> str:
    """An option's value as a resume message shows it: an unset one was chosen from the corpus size."""
    return "unset (chosen from the corpus size)" if value is None else str(value)


def save_train_state(directory: Path | str, state: TrainState) -> Path:
    """Write the training state folder atomically (built beside it, then swapped in)."""
    from safetensors.torch import save_file

    with atomic_dir(directory) as build:
        tensors: dict[str, torch.Tensor] = {"rng.torch": state.torch_rng.detach().clone().to(torch.uint8)}
        # clone(): safetensors refuses tensors that share memory (tied embeddings share a weight)
        for name, tensor in state.model_state.items():
            tensors[f"model.{name}"] = tensor.detach().float().clone().contiguous()
        for index, slots in state.optimizer_state.items():
            for key, tensor in slots.items():
                tensors[f"optimizer.{index}.{key}"] = tensor.detach().float().clone().contiguous()
        for number, best in enumerate(state.best_states):
            for name, tensor in best.items():
                tensors[f"best.{number}.{name}"] = tensor.detach().float().clone().contiguous()
        save_file(tensors, str(build / TENSORS_FILE), metadata={"format": STATE_FORMAT})
        settle_safetensors_file(build / TENSORS_FILE)
        write_bytes(build / SRC_SPM_FILE, state.src_spm)
        write_bytes(build / TGT_SPM_FILE, state.tgt_spm)
        progress = dataclasses.asdict(state.progress)
        if math.isinf(state.progress.best.loss):
            progress["best"]["loss"] = None
        if math.isinf(state.progress.lowest_loss):
            progress["lowest_loss"] = None
        document = {
            "format": STATE_FORMAT, "format_version": STATE_VERSION,
            "fingerprint": state.fingerprint, "model": state.model_config, **progress,
            "best_states": len(state.best_states), "optimizer_params": sorted(state.optimizer_state),
        }
        write_bytes(build / JSON_FILE, (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode())
    return Path(directory)


def discard_train_state(directory: Path | str) -> None:
    """Remove a finished run's state: renamed away first, so an interruption cannot leave half of it."""
    directory = Path(directory)
    if directory.is_dir():
        doomed = directory.with_name(f".{directory.name}.done-{os.getpid()}")
        os.replace(directory, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _need(document: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = document.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise ModelFileError(f"{path}: '{key}' is missing or has the wrong type.")
    return value


def _read_progress(document: dict[str, Any], json_path: Path) -> Progress:
    """The Progress fields of state.json, checked."""
    counts = {key: _need(document, key, int, json_path) for key in ("epoch", "batches_done", "step", "bad_validations")}
    if min(counts.values()) < 0 or counts["epoch"] < 1:
        raise ModelFileError(f"{json_path}: position or counters out of range.")
    best = _need(document, "best", dict, json_path)
    if not all(isinstance(best.get(key), (int, float)) for key in ("bleu", "chrf", "step")) \
            or not isinstance(best.get("loss"), (int, float, type(None))):
        raise ModelFileError(f"{json_path}: 'best' must hold bleu, chrf, loss and step numbers.")
    history = _need(document, "history", list, json_path)
    if not all(isinstance(record, dict) and isinstance(record.get("step"), int) for record in history):
        raise ModelFileError(f"{json_path}: 'history' must be a list of validation records.")
    precision = document.get("precision", "float32")      # states saved before it was recorded
    if precision not in TRAIN_PRECISIONS or precision == "auto":     # a state records the resolved one
        raise ModelFileError(f"{json_path}: 'precision' must be one of {', '.join(TRAIN_PRECISIONS[1:])}.")
    loss_scale, scale_growth = document.get("loss_scale", 0.0), document.get("scale_growth", 0)
    if not isinstance(loss_scale, (int, float)) or not isinstance(scale_growth, int) or loss_scale < 0 or scale_growth < 0:
        raise ModelFileError(f"{json_path}: 'loss_scale' and 'scale_growth' must be numbers, not negative.")
    processes = document.get("processes", 1)              # states saved before it was recorded: one
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
        raise ModelFileError(f"{json_path}: 'processes' must be a positive integer.")
    lowest_loss = document.get("lowest_loss", best["loss"])
    if not isinstance(lowest_loss, (int, float, type(None))) or isinstance(lowest_loss, bool):
        raise ModelFileError(f"{json_path}: 'lowest_loss' must be a number or null.")
    return Progress(
        lowest_loss=math.inf if lowest_loss is None else float(lowest_loss),
        **counts, lr_scale=float(_need(document, "lr_scale", (int, float), json_path)),
        best=BestScores(bleu=float(best["bleu"]), chrf=float(best["chrf"]), step=int(best["step"]),
                        loss=math.inf if best["loss"] is None else float(best["loss"])),
        history=history, elapsed_s=float(_need(document, "elapsed_s", (int, float), json_path)), precision=precision,
        processes=processes, loss_scale=float(loss_scale), scale_growth=scale_growth)


def _expected_tensors(config: ModelConfig, optimizer_params: list, best_states: int, json_path: Path) -> dict[str, tuple | None]:
    """Name -> shape of every tensor state.safetensors must hold (None: any shape)."""
    with torch.device("meta"):
        skeleton = Seq2Seq(config)
    parameters = [tuple(p.shape) for p in skeleton.parameters()]
    model_shapes = {name: tuple(t.shape) for name, t in skeleton.state_dict().items()}
    if not all(isinstance(i, int) and 0 <= i < len(parameters) for i in optimizer_params):
        raise ModelFileError(f"{json_path}: 'optimizer_params' does not match the model.")
    expected: dict[str, tuple | None] = {"rng.torch": None}
    expected.update({f"model.{name}": shape for name, shape in model_shapes.items()})
    for index in optimizer_params:
        expected.update({f"optimizer.{index}.step": (), f"optimizer.{index}.exp_avg": parameters[index],
                         f"optimizer.{index}.exp_avg_sq": parameters[index]})
    for number in range(best_states):
        expected.update({f"best.{number}.{name}": shape for name, shape in model_shapes.items()})
    return expected


def _read_tensors(tensors_path: Path, expected: dict[str, tuple | None]) -> dict[str, torch.Tensor]:
    """The tensors of state.safetensors, exactly the names and shapes expected."""
    from safetensors import safe_open

    try:
        with safe_open(str(tensors_path), framework="pt") as stored:
            shapes = {name: tuple(stored.get_slice(name).get_shape()) for name in stored.keys()}
            if set(shapes) != set(expected):
                first = sorted(set(shapes) ^ set(expected))[0]
                raise ModelFileError(f"{tensors_path}: does not match {JSON_FILE} (first difference: {first}).")
            for name, shape in expected.items():
                if shape is not None and shapes[name] != shape:
                    raise ModelFileError(f"{tensors_path}: {name} has shape {list(shapes[name])}, expected {list(shape)}.")
            tensors = {name: stored.get_tensor(name) for name in shapes}
    except ModelFileError:
        raise
    except Exception as exc:  # safetensors raises SafetensorError/OSError for corrupt files
        reason = " ".join(str(exc).split())
        raise ModelFileError(f"{tensors_path}: corrupt or truncated safetensors file ({reason}).") from None
    rng = tensors["rng.torch"]
    if rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
        raise ModelFileError(f"{tensors_path}: rng.torch is not a torch CPU generator state.")
    return tensors


def load_train_state(directory: Path | str) -> TrainState:
    """Read and check a training state folder; anything unexpected is a ModelFileError."""
    directory = Path(directory)
    json_path, tensors_path = directory / JSON_FILE, directory / TENSORS_FILE
    if not directory.is_dir():
        raise OptionError(f"--resume: no interrupted run to resume ({directory} does not exist).")
    for path in (json_path, tensors_path, directory / SRC_SPM_FILE, directory / TGT_SPM_FILE):
        if not path.is_file():
            raise ModelFileError(f"{path}: missing; the training state is incomplete.")
    document = read_json_document(json_path, STATE_FORMAT, STATE_VERSION, "training state")
    try:
        config = ModelConfig.from_dict(document.get("model"))
    except ModelFileError as exc:
        raise ModelFileError(f"{json_path}: bad model settings: {str(exc).removeprefix('config.json: ')}") from None
    progress = _read_progress(document, json_path)
    best_states = _need(document, "best_states", int, json_path)
    if not 0 <= best_states <= 64:
        raise ModelFileError(f"{json_path}: position or counters out of range.")
    optimizer_params = _need(document, "optimizer_params", list, json_path)
    tensors = _read_tensors(tensors_path, _expected_tensors(config, optimizer_params, best_states, json_path))
    for name in (SRC_SPM_FILE, TGT_SPM_FILE):
        try:
            Tokenizer((directory / name).read_bytes())
        except ModelFileError as exc:
            raise ModelFileError(f"{directory / name}: {exc}") from None

    def prefixed(prefix: str) -> dict[str, torch.Tensor]:
        return {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}

    return TrainState(
        fingerprint=_need(document, "fingerprint", dict, json_path), model_config=config.to_dict(), progress=progress,
        model_state=prefixed("model."),
        optimizer_state={index: prefixed(f"optimizer.{index}.") for index in optimizer_params},
        torch_rng=tensors["rng.torch"], src_spm=(directory / SRC_SPM_FILE).read_bytes(),
        tgt_spm=(directory / TGT_SPM_FILE).read_bytes(),
        best_states=[prefixed(f"best.{number}.") for number in range(best_states)])
