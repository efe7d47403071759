"""`attncli models`: every model folder `--model NAME` can find, in search order.

The places and their order are modelfile.model_search_path's. A folder counts if it holds
config.json; a NAME found in more than one place is marked `shadowed` after the first, which is
the one `--model NAME` loads. Only config.json is read (no tokenizers, no weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from .errors import ModelFileError
from .model_info import languages_of
from .modelfile import CONFIG_FILE, model_search_path, read_model_info


@dataclass(frozen=True)
class ModelEntry:
    """One model folder found on the search path."""

    name: str
    directory: Path
    place: str                          # SearchPlace.kind: working directory, $ATTNCLI_MODELS, user, shipped
    size_bytes: int                     # the files of the folder
    languages: Optional[tuple[str, str]] = None   # (source, target) if known
    dev_bleu: Optional[float] = None    # best dev BLEU of training (greedy), config.json info.best
    shadowed: bool = False              # an earlier folder of the same name is the one --model NAME gets
    problem: Optional[str] = None       # why config.json could not be read, if it could not

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `attncli models --json` prints for this model."""
        return {"name": self.name, "languages": list(self.languages) if self.languages else None,
                "size_bytes": self.size_bytes, "dev_bleu": self.dev_bleu, "path": str(self.directory),
                "place": self.place, "shadowed": self.shadowed, "problem": self.problem}


def find_models() -> list[ModelEntry]:
    """The model folders on the search path, place by place in search order, by name within a place."""
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for place in model_search_path():
        for folder in _model_folders(place.directory):
            entries.append(describe_model(folder, place.kind, shadowed=folder.name in seen))
            seen.add(folder.name)
    return entries


def _model_folders(directory: Path) -> Iterator[Path]:
    """The sub-folders of `directory` that hold config.json (none if it is missing or unreadable)."""
    try:
        children = sorted(directory.iterdir())
    except OSError:
        return
    yield from (child for child in children if (child / CONFIG_FILE).is_file())


def describe_model(folder: Path, place: str, shadowed: bool = False) -> ModelEntry:
    """A ModelEntry for one folder, from its config.json's model card; a card that cannot be read is
    reported in `problem`, not raised, so one bad folder does not hide the others."""
    size = sum(child.stat().st_size for child in folder.iterdir() if child.is_file())
    try:
        info = read_model_info(folder)
    except (ModelFileError, OSError) as exc:
        return ModelEntry(folder.name, folder, place, size, languages_of(None, folder.name), None, shadowed, str(exc))
    bleu = (info.best or {}).get("dev_bleu")
    bleu = float(bleu) if isinstance(bleu, (int, float)) and not isinstance(bleu, bool) else None
    return ModelEntry(folder.name, folder, place, size, languages_of(info.corpus, folder.name), bleu, shadowed)


def models_json(entries: list[ModelEntry]) -> str:
    """`attncli models --json`: one JSON array of ModelEntry.to_dict objects."""
    return json.dumps([entry.to_dict() for entry in entries], ensure_ascii=False)


def models_table(entries: list[ModelEntry]) -> str:
    """`attncli models`: a plain text table, one model a line (no trailing newline)."""
    header = ("name", "languages", "size", "dev BLEU", "where")
    rows = [header] + [(entry.name, "→".join(entry.languages) if entry.languages else "-",
                        f"{entry.size_bytes / 1e6:.1f} MB", "-" if entry.dev_bleu is None else f"{entry.dev_bleu:.2f}",
                        _where(entry)) for entry in entries]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    right = (False, False, True, True)
    return "\n".join("  ".join([*(cell.rjust(width) if align else cell.ljust(width)
                                  for cell, width, align in zip(row, widths, right)), row[-1]])
                     for row in rows)


def _where(entry: ModelEntry) -> str:
    notes = [entry.place] + (["shadowed by an earlier one"] if entry.shadowed else []) \
        + ([f"unreadable: {entry.problem}"] if entry.problem else [])
    return f"{entry.directory} ({'; '.join(notes)})"
