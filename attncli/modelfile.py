"""Save and load a model folder: config.json, model.safetensors and the SentencePiece model(s).

The only module that knows the file format; the model card (config.json's `info`) is
model_info.ModelInfo. Nothing is unpickled: weights are safetensors, settings JSON, tokenizers
SentencePiece protos. Shapes in the JSON are checked against the safetensors header before
anything is built, so a hostile file cannot make us allocate more than the file holds. Saving
builds the folder beside the target and renames it into place. A model NAME is found along
model_search_path (working directory, $ATTNCLI_MODELS, user data folder, shipped models).
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterator, NamedTuple

from .config import ModelConfig
from .errors import ModelFileError
from .model_info import LinkSettings, ModelInfo
from .source_words import format_words, parse_words
from .tokenizer import Tokenizer

if TYPE_CHECKING:            # torch is imported where it is used: reading a model folder needs none
    from .model import Seq2Seq

FORMAT = "attncli-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
JOINT_SPM_FILE = "spm.model"
SRC_SPM_FILE = "spm.src.model"
TGT_SPM_FILE = "spm.tgt.model"
SOURCE_WORDS_FILE = "source-words.txt"   # the training sources' words (source_words.py); optional
TIED_KEY = "decoder.output.weight"   # a view of decoder.embed.weight when embeddings are tied

PICKLE_SIGNS = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ / a torch.save zip archive
DEFAULT_MODEL = "es-en"
MODELS_ENV = "ATTNCLI_MODELS"   # folders of model folders (os.pathsep-separated), searched after the working directory


def shipped_models_dir() -> Path:
    """The models that come with attncli: `attncli/shipped_models/` in an installed package (the
    wheel maps the repository's `models/` there), else `models/` beside the source tree (a clone,
    an editable install)."""
    package = Path(__file__).resolve().parent
    installed = package / "shipped_models"
    return installed if installed.is_dir() else package.parent / "models"


MODELS_DIR = shipped_models_dir()


@dataclass
class ModelFolder:
    """A model folder read and checked, weights not yet loaded."""

    directory: Path
    config: ModelConfig
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    model_info: ModelInfo = field(default_factory=ModelInfo)   # training summary, search and link defaults

    @property
    def info(self) -> dict[str, Any]:
        """The model card as config.json has it (ModelInfo.to_dict)."""
        return self.model_info.to_dict()

    @property
    def weights_path(self) -> Path:
        return self.directory / WEIGHTS_FILE


@dataclass
class LoadedModel:
    model: Seq2Seq
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    model_info: ModelInfo = field(default_factory=ModelInfo)   # training summary, search and link defaults

    @property
    def info(self) -> dict[str, Any]:
        """The model card as config.json has it (ModelInfo.to_dict)."""
        return self.model_info.to_dict()


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def settle_safetensors_file(path: Path) -> None:
    """Give a file safetensors wrote the mode any new file gets (0666 less the umask: it writes
    through a temporary file of mode 0600), then flush it to disk."""
    umask = os.umask(0o077)     # read it (the stricter value holds for an instant, not 0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    fsync_file(path)


def write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):   # this kernel or filesystem cannot swap
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_dir_atomically(build_dir: Path, target: Path) -> None:
    """Move a complete `build_dir` to `target`, replacing an older model there.

    A rename cannot replace a non-empty folder. On Linux the two folders are swapped in one
    step, so `target` always holds a complete model, even if the process is killed here;
    elsewhere the old model is renamed aside first and removed once the new one is in place.
    """
    if target.exists() and _exchange(build_dir, target):
        shutil.rmtree(build_dir, ignore_errors=True)   # now holds the old model
    else:
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(build_dir, target)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    except OSError:
        pass


def remove_stale_work_dirs(target: Path) -> None:
    """Remove `.NAME.tmp-PID` / `.NAME.old-PID` folders beside `target` left by a process that
    was killed mid-save (SIGKILL, out of memory, power loss): one whose PID no longer runs.
    Folders of a live process (perhaps another save in progress) are left alone."""
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*-*"):
        kind, _, pid = leftover.name[len(target.name) + 2:].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and leftover.is_dir() and not _process_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True                     # os.kill(pid, 0) would terminate the process on Windows
    if pid == os.getpid():
        return False                    # our own leftover from an earlier save in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True                     # exists (owned by someone else) or cannot tell: keep it
    return True


@contextmanager
def atomic_dir(directory: Path | str) -> Iterator[Path]:
    """Build a folder's new content in a temporary folder beside it, then swap it into place.

    On any error (or Ctrl-C) the temporary folder is removed and the old folder stays as it was.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work_dirs(target)
    build = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    if build.exists():
        shutil.rmtree(build)
    build.mkdir()
    try:
        yield build
        replace_dir_atomically(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


def save_model(directory: Path | str, model: Seq2Seq, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer,
               info: ModelInfo | dict[str, Any] | None = None, fp16: bool = False,
               source_words: Collection[str] | None = None) -> Path:
    """Write a complete model folder atomically; `fp16` halves its size (loading casts back).

    `info` is the model card (a dict is read as ModelInfo.from_dict reads config.json);
    `source_words`, the words of the training sources, lets translating name the words it never saw."""
    import torch
    from safetensors.torch import save_file

    card = ModelInfo.coerce(info)
    with atomic_dir(directory) as build:
        state = {name: tensor.detach().to(torch.float16 if fp16 else torch.float32).contiguous()
                 for name, tensor in model.state_dict().items()}
        if model.config.tied_output:
            state.pop(TIED_KEY)
        save_file(state, str(build / WEIGHTS_FILE), metadata={"format": FORMAT})
        settle_safetensors_file(build / WEIGHTS_FILE)
        joint = src_tokenizer.model_proto == tgt_tokenizer.model_proto
        if joint:
            write_bytes(build / JOINT_SPM_FILE, src_tokenizer.model_proto)
        else:
            write_bytes(build / SRC_SPM_FILE, src_tokenizer.model_proto)
            write_bytes(build / TGT_SPM_FILE, tgt_tokenizer.model_proto)
        if source_words is not None:
            write_bytes(build / SOURCE_WORDS_FILE, format_words(source_words).encode())
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": model.config.to_dict(),
            "tokenizer": {"type": "sentencepiece-unigram", "joint": joint,
                          "src_sha256": _digest(src_tokenizer), "tgt_sha256": _digest(tgt_tokenizer)},
            "weights_dtype": "float16" if fp16 else "float32",
            "info": card.to_dict(),
        }
        write_bytes(build / CONFIG_FILE, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())
    return Path(directory)


def store_link_defaults(directory: Path | str, min_weight: float, mutual: bool, attention_shift: int,
                        measured: dict[str, Any] | None = None) -> None:
    """Record in a model's config.json how `inspect alignment` should pick links by default
    (tuned on gold alignments, e.g. by benchmarks/alignment.py --store-best). Atomic rewrite."""
    settings = LinkSettings.from_dict({"min_weight": float(min_weight), "mutual": bool(mutual),
                                       "attention_shift": int(attention_shift)})
    update_model_info(directory, lambda info: info.with_links(settings, measured))


def update_model_info(directory: Path | str, change: Callable[[ModelInfo], ModelInfo]) -> None:
    """Rewrite the `info` block of a model's config.json as `change` makes it, atomically; the
    weights and everything else stay as they are."""
    directory = Path(directory)
    document = _read_config(directory)
    document["info"] = change(ModelInfo.from_dict(document.get("info"))).to_dict()
    temporary = directory / f".{CONFIG_FILE}.tmp-{os.getpid()}"
    try:
        write_bytes(temporary, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())
        os.replace(temporary, directory / CONFIG_FILE)
    finally:
        temporary.unlink(missing_ok=True)


def _digest(tokenizer: Tokenizer) -> str:
    return hashlib.sha256(tokenizer.model_proto).hexdigest()


def read_json_document(path: Path, form: str, version: int, what: str) -> dict[str, Any]:
    """A JSON object whose "format" is `form` and "format_version" is `version`, else ModelFileError."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc}).") from None
    if not isinstance(document, dict) or document.get("format") != form:
        raise ModelFileError(f"{path}: not an attncli {what} (no \"format\": \"{form}\").")
    if document.get("format_version") != version:
        raise ModelFileError(f"{path}: unsupported format_version {document.get('format_version')!r}.")
    return document


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{directory}: not a model folder ({CONFIG_FILE} is missing).")
    return read_json_document(path, FORMAT, FORMAT_VERSION, "model config")


def read_model_info(directory: Path | str) -> ModelInfo:
    """The model card of a folder (config.json's `info`), without reading its tokenizers or weights."""
    return ModelInfo.from_dict(_read_config(Path(directory)).get("info"))


def _read_tokenizer(path: Path) -> Tokenizer:
    if not path.is_file():
        raise ModelFileError(f"{path}: missing SentencePiece model.")
    try:
        return Tokenizer(path.read_bytes())
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def read_weights(folder: ModelFolder, framework: str = "pt") -> dict[str, Any]:
    """The folder's weights as float32 tensors ("pt") or arrays ("numpy"), after checking every
    name and shape against its config."""
    from safetensors import safe_open

    path, config = folder.weights_path, folder.config
    if not path.is_file():
        raise ModelFileError(f"{path}: missing weights file.")
    with open(path, "rb") as handle:
        head = handle.read(9)       # safetensors: the header's size (8 bytes, little-endian), then "{"
    if head[8:] != b"{" and head.startswith(PICKLE_SIGNS):   # a size may well start with byte 0x80
        raise ModelFileError(f"{path}: is a pickle or torch.save file, which attncli refuses to load (it can run code); expected safetensors.")
    expected = config.parameter_shapes()
    if config.tied_output:
        expected.pop(TIED_KEY)
    try:
        with safe_open(str(path), framework=framework) as weights:
            found = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
            if found != expected:
                wrong = sorted(set(found.items()) ^ set(expected.items()))
                raise ModelFileError(
                    f"{path}: weights do not match config.json (first difference: {wrong[0][0]}).")
            if framework == "numpy":
                return {name: weights.get_tensor(name).astype("float32") for name in found}
            return {name: weights.get_tensor(name).float() for name in found}
    except ModelFileError:
        raise
    except Exception as exc:  # safetensors raises SafetensorError/OSError for corrupt files
        raise ModelFileError(f"{path}: corrupt or truncated safetensors file ({exc}).") from None


def search_defaults(info: ModelInfo | dict[str, Any]) -> tuple[int, float]:
    """Beam size and length penalty stored at training time (5 and 1.0 when absent): ModelInfo.search."""
    search = ModelInfo.coerce(info).search
    return search.beam_size, search.length_penalty


class SearchPlace(NamedTuple):
    """A folder of model folders that `--model NAME` searches, and what kind of place it is."""

    kind: str            # "working directory", "$ATTNCLI_MODELS", "user" or "shipped"
    directory: Path


def user_models_dir() -> Path:
    """`models/` in attncli's user data folder (platformdirs): $XDG_DATA_HOME/attncli/models,
    by default ~/.local/share/attncli/models, on Linux; ~/Library/Application Support/attncli/models on macOS."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("attncli", appauthor=False)) / "models"


def model_search_path() -> list[SearchPlace]:
    """Where a model NAME is looked for, in order (the one owner of this order): the working
    directory, each folder listed in $ATTNCLI_MODELS, the user data folder, the shipped models."""
    listed = [SearchPlace(f"${MODELS_ENV}", Path(entry).absolute())
              for entry in os.environ.get(MODELS_ENV, "").split(os.pathsep) if entry]
    return [SearchPlace("working directory", Path.cwd()), *listed,
            SearchPlace("user", user_models_dir()), SearchPlace("shipped", MODELS_DIR)]


def resolve_model_path(name_or_dir: str | Path) -> Path:
    """A model folder: a path to one, or a NAME, found as the first NAME/config.json along
    model_search_path() (a folder ./NAME without config.json is returned last, so that loading it
    says what it lacks)."""
    path = Path(name_or_dir)
    if len(path.parts) != 1 or path.name == "..":
        if path.is_dir():
            return path
        if path.is_file():
            folder = f"; give its folder, {path.parent}" if path.name == CONFIG_FILE else ""
            raise ModelFileError(f"model '{name_or_dir}' is a file, not a model folder (one holding {CONFIG_FILE}){folder}.")
        raise ModelFileError(f"unknown model '{name_or_dir}': no such folder.")
    places = model_search_path()
    for place in places:
        if (place.directory / path / CONFIG_FILE).is_file():
            return place.directory / path
    if path.is_dir():
        return path
    looked = "; ".join(f"{place.directory} ({place.kind})" for place in places)
    raise ModelFileError(f"unknown model '{name_or_dir}': no folder {path.name} holding {CONFIG_FILE} in {looked}; "
                         f"`attncli models` lists the models found.")


def read_model_folder(directory: Path | str) -> ModelFolder:
    """Read config.json and the SentencePiece model(s) of a folder and check they belong together."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: no such model folder.")
    document = _read_config(directory)
    config = ModelConfig.from_dict(document.get("model"))
    if not isinstance(document.get("tokenizer"), dict):
        raise ModelFileError(f"{directory / CONFIG_FILE}: 'tokenizer' must be an object.")
    joint = bool(document["tokenizer"].get("joint", True))
    if joint:
        src_tokenizer = tgt_tokenizer = _read_tokenizer(directory / JOINT_SPM_FILE)
    else:
        src_tokenizer = _read_tokenizer(directory / SRC_SPM_FILE)
        tgt_tokenizer = _read_tokenizer(directory / TGT_SPM_FILE)
    tokenizer_info = document["tokenizer"]
    for side, tokenizer in (("src", src_tokenizer), ("tgt", tgt_tokenizer)):
        if tokenizer_info.get(f"{side}_sha256") != _digest(tokenizer):
            raise ModelFileError(f"{directory}: the SentencePiece model is not the one this model was trained with.")
    if len(src_tokenizer) != config.src_vocab_size or len(tgt_tokenizer) != config.tgt_vocab_size:
        raise ModelFileError(
            f"{directory}: the SentencePiece vocabulary ({len(src_tokenizer)}/{len(tgt_tokenizer)} pieces) "
            f"does not match the weights ({config.src_vocab_size}/{config.tgt_vocab_size}).")
    return ModelFolder(directory, config, src_tokenizer, tgt_tokenizer, ModelInfo.from_dict(document.get("info")))


def read_source_words(directory: Path | str) -> frozenset[str] | None:
    """The words of a model's training sources, or None if its folder does not hold them."""
    path = Path(directory) / SOURCE_WORDS_FILE
    try:
        return parse_words(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: cannot be read as UTF-8 text ({exc}).") from exc


def load_model(directory: Path | str) -> LoadedModel:
    """Load a model folder for inference (eval mode), validating everything first."""
    from .model import Seq2Seq, skipped_initialisation

    folder = read_model_folder(directory)
    state = read_weights(folder)
    with skipped_initialisation():          # every weight is in `state` (checked above)
        model = Seq2Seq(folder.config)
    model.load_state_dict(state, strict=not folder.config.tied_output)
    model.eval()
    return LoadedModel(model, folder.src_tokenizer, folder.tgt_tokenizer, folder.model_info)
