"""Word-alignment quality on the Hansards fr-en dev set (37 gold pairs): AER, precision, recall.

Rows (all scored with attncli.alignment.parse_pharaoh + score_alignments, the code behind
`attncli inspect aer`):

1. diagonal baselines: each English word j linked to French word round(j * len_fr / len_en)
   (one link per English word), and each French word i to English word round(i * len_en / len_fr)
   (one link per French word, the baseline the Hansards README quotes at about 0.60 AER);
2. eflomal (a statistical aligner, installed in its own virtualenv, not a dependency of attncli)
   trained on the same text as the attncli fr-en model (benchmarks/prepare_fr_en.py: Tatoeba fr-en
   tokenized the Hansards way + Hansards train.tsv, whose first 37 lines are the dev sentences):
   forward, reverse, intersection, union and grow-diag-final-and;
3. attncli models (`--model DIR`, repeatable): `Translator.align_batch` on the dev pairs, links
   from `Alignment.links(min_weight, mutual)` for a grid of attention shifts, minimum weights and
   mutual (both-sides) links; with
   `--reverse-model DIR` (an en->fr model) also the reverse links (transposed) and their
   intersection, union and grow-diag-final-and with the forward links;
4. each model as users get it: `attncli inspect alignment --model DIR --file DEV --format pharaoh`
   run as a command, with no link options: the settings stored in the model (`--store-best`
   writes the best row's shift, min_weight and mutual there) or the plain argmax.

The table (markdown) goes to stdout, progress to stderr, raw numbers to `--json OUT`.
Run it with the attncli virtualenv:

    .venv/bin/python benchmarks/alignment.py --model models/fr-en --json /tmp/align.json

The eflomal virtualenv (benchmarks/.venv-eflomal) is created on first use (`pip install
eflomal==2.0.0`); its alignments of the whole corpus are cached in benchmarks/.cache/, keyed by
the corpus content and the eflomal options, so later runs only score them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HANSARDS = REPO.parent / "shared" / "corpora" / "hansards-fr-en"
CACHE = HERE / ".cache"
EFLOMAL_VENV = HERE / ".venv-eflomal"
EFLOMAL_REQUIREMENT = "eflomal==2.0.0"
DEFAULT_MODELS = [str(REPO / "models" / "fr-en")]
SHIFTS = [0, 1]
MIN_WEIGHTS = [0.0, 0.2, 0.3, 0.4, 0.5]

sys.path.insert(0, str(REPO))
from attncli.alignment import format_pharaoh, parse_pharaoh, score_alignments  # noqa: E402
from attncli.word_aligner import grow_diag_final_and  # noqa: E402,F401  (guide_alignments.py uses it too)

Link = tuple[int, int]          # (French word, English word), the gold file's order
Links = set[Link]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Symmetrization: grow_diag_final_and is attncli.word_aligner's (Koehn's, as in Moses)


def symmetrized(forward: Sequence[Links], reverse: Sequence[Links], lengths: Sequence[tuple[int, int]]) -> dict[str, list[Links]]:
    """Intersection, union and grow-diag-final-and, sentence by sentence."""
    return {
        "intersection": [f & r for f, r in zip(forward, reverse)],
        "union": [f | r for f, r in zip(forward, reverse)],
        "grow-diag-final-and": [grow_diag_final_and(f, r, ls, lt) for f, r, (ls, lt) in zip(forward, reverse, lengths)],
    }


# ---------------------------------------------------------------------------------------------
# Data

def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2:
                raise SystemExit(f"{path}:{number}: expected french<TAB>english, found {len(fields)} fields.")
            pairs.append((fields[0], fields[1]))
    return pairs


def read_gold(path: Path) -> list[tuple[Links, Links]]:
    with open(path, encoding="utf-8") as handle:
        return [parse_pharaoh(line, f"{path}:{n}: ") for n, line in enumerate(handle, 1)]


def prepared_corpus(path: str | None) -> Path:
    """The fr-en training corpus of the attncli model: the given file, or one built (once) into
    benchmarks/.cache/ by prepare_fr_en.py."""
    if path:
        return Path(path)
    corpus = CACHE / "fr-en-align.tsv"
    if not corpus.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        log(f"building {corpus} with benchmarks/prepare_fr_en.py ...")
        subprocess.run([sys.executable, str(HERE / "prepare_fr_en.py"), str(corpus) + ".part"], check=True, stdout=sys.stderr)
        os.replace(str(corpus) + ".part", corpus)
    return corpus


def locate_dev(corpus: list[tuple[str, str]], dev: list[tuple[str, str]], expected: int | None) -> int:
    """Line index (0-based) of the dev block inside the corpus: expected where Hansards train.tsv
    is appended (its first lines are the dev pairs), else searched for."""
    n = len(dev)
    candidates = ([expected] if expected is not None else []) + [k for k, pair in enumerate(corpus) if pair == dev[0]]
    for k in candidates:
        if 0 <= k and corpus[k:k + n] == dev:
            return k
    raise SystemExit("the dev pairs are not a block of the corpus: eflomal must be trained on text that includes them.")


# ---------------------------------------------------------------------------------------------
# Baselines and eflomal

def proportional(n: int, n_from: int, n_to: int) -> int:
    return min(n_to - 1, int(n * n_to / n_from + 0.5))


def diagonal(dev: list[tuple[str, str]], per_french: bool) -> list[Links]:
    result = []
    for french, english in dev:
        lf, le = len(french.split()), len(english.split())
        if per_french:
            result.append({(i, proportional(i, lf, le)) for i in range(lf)})
        else:
            result.append({(proportional(j, le, lf), j) for j in range(le)})
    return result


def eflomal_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "eflomal-align").is_file():
        log(f"creating {venv} and installing {EFLOMAL_REQUIREMENT} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", EFLOMAL_REQUIREMENT], check=True, stdout=sys.stderr)
    return venv / "bin" / "eflomal-align"


def run_eflomal(corpus_path: Path, corpus: list[tuple[str, str]], args: argparse.Namespace) -> tuple[Path, Path, dict]:
    """Forward and reverse Pharaoh link files for the whole corpus (cached)."""
    options = ["--model", str(args.eflomal_model), "--length", str(args.eflomal_length),
               "--n-samplers", str(args.eflomal_samplers)]
    digest = hashlib.sha256(corpus_path.read_bytes()).hexdigest()[:16]
    key = hashlib.sha256(" ".join([digest, EFLOMAL_REQUIREMENT] + options).encode()).hexdigest()[:12]
    folder = CACHE / f"eflomal-{key}"
    forward, reverse = folder / "forward.links", folder / "reverse.links"
    info = {"corpus": str(corpus_path), "corpus_sha256_16": digest, "pairs": len(corpus),
            "package": EFLOMAL_REQUIREMENT, "options": options, "cache": str(folder)}
    if forward.is_file() and reverse.is_file() and not args.eflomal_rerun:
        log(f"eflomal: cached links in {folder}")
        info.update(json.loads((folder / "info.json").read_text()) if (folder / "info.json").is_file() else {})
        info["cached"] = True
        return forward, reverse, info
    binary = eflomal_python(Path(args.eflomal_venv))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "source.fr", "w", encoding="utf-8") as fr, open(folder / "target.en", "w", encoding="utf-8") as en:
        for french, english in corpus:
            fr.write(french + "\n")
            en.write(english + "\n")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.eflomal_threads))
    command = ["nice", "-n", str(args.nice), str(binary), "-s", str(folder / "source.fr"), "-t", str(folder / "target.en"),
               "-f", str(forward) + ".part", "-r", str(reverse) + ".part", "--overwrite", "-v"] + options
    log(f"eflomal: aligning {len(corpus)} pairs ({args.eflomal_threads} thread(s), nice {args.nice}) ...")
    start = time.time()
    subprocess.run(command, env=env, check=True, stdout=sys.stderr)
    seconds = time.time() - start
    os.replace(str(forward) + ".part", forward)
    os.replace(str(reverse) + ".part", reverse)
    (folder / "source.fr").unlink()
    (folder / "target.en").unlink()
    info.update(seconds=round(seconds, 1), threads=args.eflomal_threads)
    (folder / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    log(f"eflomal: done in {seconds:.0f} s")
    info["cached"] = False
    return forward, reverse, info


def read_links(path: Path, start: int, count: int) -> list[Links]:
    result = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if start <= number < start + count:
                result.append(parse_pharaoh(line, f"{path}:{number + 1}: ")[1])
            elif number >= start + count:
                break
    if len(result) != count:
        raise SystemExit(f"{path}: too few lines for the dev block.")
    return result


# ---------------------------------------------------------------------------------------------
# attncli models

def model_name(path: str, all_paths: Sequence[str]) -> str:
    name = Path(path).name
    return name if sum(Path(p).name == name for p in all_paths) == 1 else path


def attention_alignments(model_dir: str, sources: list[str], targets: list[str], shifts: Sequence[int],
                         threads: int, batch: int) -> dict[int, list]:
    """Alignment objects for every dev pair, per attention shift."""
    from attncli.translator import Translator
    translator = Translator.load(model_dir, threads=threads)
    result = {}
    for shift in shifts:
        alignments = []
        for start in range(0, len(sources), batch):
            # the gold counts the file's own tokens: read them as they are, as `inspect alignment --file` does
            alignments += translator.align_batch(sources[start:start + batch], targets[start:start + batch],
                                                 attention_shift=shift, normalize=False)
        result[shift] = alignments
    return result


def cli_links(model_dir: str, dev_path: str) -> list[Links]:
    """Links exactly as users get them: `attncli inspect alignment --file ... --format pharaoh`."""
    command = [sys.executable, "-m", "attncli", "inspect", "alignment", "--model", model_dir,
               "--file", dev_path, "--format", "pharaoh"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [parse_pharaoh(line)[1] for line in output.splitlines()]


# ---------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", metavar="DIR",
                        help="fr->en attncli model folder (repeatable; default models/fr-en, skipped if missing).")
    parser.add_argument("--reverse-model", metavar="DIR",
                        help="en->fr attncli model folder, symmetrized with each --model.")
    parser.add_argument("--dev", default=str(HANSARDS / "dev.tsv"), help="dev pairs french<TAB>english.")
    parser.add_argument("--gold", default=str(HANSARDS / "dev.align"), help="gold Pharaoh links of the dev pairs.")
    parser.add_argument("--corpus", help="eflomal training text (french<TAB>english) containing the dev pairs; "
                                         "default: built by prepare_fr_en.py into benchmarks/.cache/.")
    parser.add_argument("--skip-eflomal", action="store_true", help="no eflomal rows.")
    parser.add_argument("--eflomal-rerun", action="store_true", help="align again even if cached links exist.")
    parser.add_argument("--eflomal-venv", default=str(EFLOMAL_VENV), help="virtualenv with eflomal (created if missing).")
    parser.add_argument("--eflomal-model", type=int, default=3, help="eflomal model: 1 IBM1, 2 +HMM, 3 +fertility.")
    parser.add_argument("--eflomal-length", type=float, default=1.0, help="eflomal relative number of iterations.")
    parser.add_argument("--eflomal-samplers", type=int, default=3, help="eflomal independent samplers.")
    parser.add_argument("--eflomal-threads", type=int, default=1, help="OMP_NUM_THREADS for eflomal.")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the eflomal process.")
    parser.add_argument("--shifts", default=",".join(map(str, SHIFTS)), help="attention shifts, comma-separated.")
    parser.add_argument("--min-weights", default=",".join(map(str, MIN_WEIGHTS)), help="min_weight grid, comma-separated.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the attncli models.")
    parser.add_argument("--batch", type=int, default=16, help="pairs per align_batch call.")
    parser.add_argument("--store-best", action="store_true",
                        help="write each --model's best link settings (shift, min_weight, mutual) into its "
                             "config.json, as the defaults of `attncli inspect alignment`.")
    parser.add_argument("--json", metavar="OUT", help="save the raw numbers as JSON.")
    parser.add_argument("--save-links", metavar="DIR",
                        help="also write each row's links as a Pharaoh file (DIR/ROW.align, French index first), "
                             "to re-score with `attncli inspect aer`.")
    args = parser.parse_args(argv)
    shifts = [int(s) for s in args.shifts.split(",") if s.strip()]
    min_weights = [float(w) for w in args.min_weights.split(",") if w.strip()]

    dev = read_pairs(Path(args.dev))
    gold = read_gold(Path(args.gold))
    if len(gold) != len(dev):
        raise SystemExit(f"{args.gold} has {len(gold)} lines but {args.dev} has {len(dev)} pairs.")
    lengths = [(len(f.split()), len(e.split())) for f, e in dev]
    rows: list[dict] = []
    meta: dict = {"dev": args.dev, "gold": args.gold, "pairs": len(dev),
                  "sure": sum(len(s) for s, _ in gold), "possible": sum(len(p | s) for s, p in gold)}

    if args.save_links:
        Path(args.save_links).mkdir(parents=True, exist_ok=True)

    def add(method: str, group: str, predicted: list[Links], **extra) -> None:
        score = score_alignments(gold, predicted)
        rows.append({"method": method, "group": group, "aer": score.aer, "precision": score.precision,
                     "recall": score.recall, "links": score.predicted, "sure": score.sure,
                     "possible": score.possible, "sentences": score.sentences, **extra})
        if args.save_links:
            slug = re.sub(r"[^A-Za-z0-9.]+", "-", method).strip("-")
            path = Path(args.save_links) / f"{len(rows):02d}-{slug}.align"
            path.write_text("".join(format_pharaoh(sorted(links)) + "\n" for links in predicted), encoding="utf-8")
            rows[-1]["links_file"] = str(path)
        log(f"  {method}: AER {score.aer:.4f}")

    log("diagonal baselines")
    add("diagonal, one link per English word", "diagonal", diagonal(dev, per_french=False))
    add("diagonal, one link per French word", "diagonal", diagonal(dev, per_french=True))

    if not args.skip_eflomal:
        corpus_path = prepared_corpus(args.corpus)
        corpus = read_pairs(corpus_path)
        hansards_train = HANSARDS / "train.tsv"
        expected = None
        if hansards_train.is_file():
            with open(hansards_train, encoding="utf-8") as handle:
                expected = len(corpus) - sum(1 for _ in handle)
        start = locate_dev(corpus, dev, expected)
        log(f"eflomal: dev pairs are lines {start + 1}-{start + len(dev)} of {corpus_path} ({len(corpus)} pairs)")
        forward_path, reverse_path, info = run_eflomal(corpus_path, corpus, args)
        info["dev_lines"] = [start + 1, start + len(dev)]
        meta["eflomal"] = info
        forward = read_links(forward_path, start, len(dev))
        reverse = read_links(reverse_path, start, len(dev))
        add("eflomal forward (one link per English word)", "eflomal", forward)
        add("eflomal reverse (one link per French word)", "eflomal", reverse)
        for name, links in symmetrized(forward, reverse, lengths).items():
            add(f"eflomal {name}", "eflomal", links)

    from attncli.errors import ModelFileError
    from attncli.modelfile import store_link_defaults
    from attncli.modelfile import resolve_model_path

    def resolve(model: str, required: bool) -> str | None:
        try:
            return str(resolve_model_path(model))
        except ModelFileError as error:
            if required:
                raise SystemExit(f"--model/--reverse-model: {error}")
            log(f"no model {model}: skipping its rows (use --model DIR)")
            return None

    explicit = args.model is not None
    model_dirs = [d for d in (resolve(m, explicit) for m in (args.model or DEFAULT_MODELS)) if d]
    reverse_dir = resolve(args.reverse_model, True) if args.reverse_model else None
    meta.update(models=model_dirs, reverse_model=reverse_dir, shifts=shifts, min_weights=min_weights)
    sources, targets = [f for f, _ in dev], [e for _, e in dev]
    grid = [(shift, weight) for shift in shifts for weight in min_weights]
    forward_links: dict[str, dict] = {}
    for model_dir in model_dirs:
        name = model_name(model_dir, model_dirs)
        log(f"attncli model {model_dir}: aligning fr->en")
        alignments = attention_alignments(model_dir, sources, targets, shifts, args.threads, args.batch)
        forward_links[model_dir] = {}
        for shift, weight in grid:
            links = [set(a.links(min_weight=weight)) for a in alignments[shift]]
            forward_links[model_dir][shift, weight] = links
            add(f"{name} shift {shift} min_weight {weight:g}", "attncli", links,
                model=model_dir, shift=shift, min_weight=weight)
            mutual_links = [set(a.links(min_weight=weight, mutual=True)) for a in alignments[shift]]
            add(f"{name} shift {shift} min_weight {weight:g} mutual", "attncli", mutual_links,
                model=model_dir, shift=shift, min_weight=weight, mutual=True)
        if args.store_best:
            best = min((row for row in rows if row.get("model") == model_dir), key=lambda row: row["aer"])
            measured = {key: round(best[key], 4) for key in ("aer", "precision", "recall")}
            store_link_defaults(model_dir, best["min_weight"], best.get("mutual", False), best["shift"],
                                measured={"gold": f"{Path(args.gold).parent.name}/{Path(args.gold).name}", **measured})
            log(f"  stored in {model_dir}/config.json: shift {best['shift']} min_weight {best['min_weight']:g}"
                f"{' mutual' if best.get('mutual') else ''}")
        add(f"{name} as `attncli inspect alignment --file DEV --format pharaoh` (the model's defaults)", "attncli-cli",
            cli_links(model_dir, args.dev), model=model_dir)
    if reverse_dir:
        rname = model_name(reverse_dir, [reverse_dir])
        log(f"attncli reverse model {reverse_dir}: aligning en->fr")
        alignments = attention_alignments(reverse_dir, targets, sources, shifts, args.threads, args.batch)
        reverse_links = {}
        for shift, weight in grid:     # the reverse model's (English i, French j) -> (French j, English i)
            links = [{(j, i) for i, j in a.links(min_weight=weight)} for a in alignments[shift]]
            reverse_links[shift, weight] = links
            add(f"{rname} (en->fr, transposed) shift {shift} min_weight {weight:g}", "attncli-reverse", links,
                reverse_model=reverse_dir, shift=shift, min_weight=weight)
        for model_dir in model_dirs:
            name = model_name(model_dir, model_dirs)
            combined = {key: symmetrized(forward_links[model_dir][key], reverse_links[key], lengths) for key in grid}
            for sym in ("intersection", "union", "grow-diag-final-and"):
                for shift, weight in grid:
                    add(f"{name} + {rname} {sym} shift {shift} min_weight {weight:g}", f"attncli-{sym}",
                        combined[shift, weight][sym], model=model_dir, reverse_model=reverse_dir,
                        shift=shift, min_weight=weight)

    print(f"Hansards fr-en dev: {meta['pairs']} pairs, {meta['sure']} sure / {meta['possible']} possible gold links\n")
    print("| method | AER | precision | recall | links |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['method']} | {row['aer']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} | {row['links']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n", encoding="utf-8")
        log(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
