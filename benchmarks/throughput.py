"""Throughput of attncli and JoeyNMT on a CPU, measured side by side in one run.

Prints a markdown table on stdout (figure | attncli | JoeyNMT | ratio); progress goes to stderr.

    .venv/bin/python benchmarks/throughput.py --model models/es-en --minutes 15 --json bench.json

Figures:
- machine: the CPU, its AVX-512/AMX flags, and the paths attncli takes on it (int8 kernel,
  training precision of `auto`), printed above the table.
- training: target tokens/s (real tokens incl. EOS, no padding) over `--updates` updates after
  `--warmup` updates of `attncli.training.train_step` on the shuffled corpus: in the default
  precision (`auto`), in float32 and in bfloat16, and with input feeding; JoeyNMT: `joey_train_tokens_per_s` of the peer harness's run.sh, which
  trains for `--minutes` (validation disabled so the budget goes to training).
- equal time: `attncli train` with its default settings and `--no-lexical-model` (JoeyNMT's architecture) for `--minutes`
  too; the dev BLEU/chrF (beam 5) of each tool's model, and the beam-5 speed of both models:
  the same-architecture translation rows.
- translation: dev sentences/s with beam 1 and beam 5 (the default int8 products, and beam 5 with
  `precision="float32"`) through `Translator.translate` (decoding only, model loaded); JoeyNMT: its "Generation took" time, beam 5. Also the whole translate
  command over the same sentences (start-up and model load included) for both.
- latency: wall time of `attncli translate "hola" --model DIR` (median of `--latency-runs`), and
  of JoeyNMT's translate command on the same one sentence.
- peak RSS: of each training and translation process (attncli: wait4's ru_maxrss of a child
  process; JoeyNMT: VmHWM of its train/translate processes sampled from /proc).

Every measurement runs in a child process, one at a time; the attncli processes re-run this file
with the hidden `--worker` option. Timings are whatever this machine gives: run it on an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from attncli.machine import format_machine_report  # no torch import
CORPUS = ROOT.parent / "shared" / "corpora" / "tatoeba-es-en"
JOEY_DIR = ROOT.parent / "shared" / "peers" / "joey"
DEFAULT_JOEY_VENV = Path.home() / ".cache" / "attncli-peers" / "joey-venv"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Child processes and their peak memory


@dataclass
class ChildRun:
    stdout: str
    wall_s: float
    max_rss_mib: float


def run_child(command: list[str], stdin_path: Path | None = None, env: dict[str, str] | None = None,
              on_start=None, stderr_path: Path | None = None) -> ChildRun:
    """Run `command`; its stdout, wall time and peak RSS (wait4's ru_maxrss).

    stderr goes to ours, or is appended to `stderr_path`. ru_maxrss of a waited-for child is the
    largest RSS of it and of its own waited-for descendants.
    """
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stderr = open(stderr_path, "ab") if stderr_path else None
    try:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, env=env)
        if on_start:
            on_start(process.pid)
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    finally:
        for stream in (stdin if stdin_path else None, stderr):
            if stream:
                stream.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        where = f" (its stderr: {stderr_path})" if stderr_path else ""
        raise RuntimeError(f"{' '.join(command[:4])} ... failed with exit status {process.returncode}{where}")
    return ChildRun(stdout.decode("utf-8"), wall, usage.ru_maxrss / 1024)


def run_worker(kind: str, spec: dict) -> tuple[dict, float]:
    """Run a measurement of this file in a child process: its JSON result and peak RSS in MiB."""
    run = run_child([sys.executable, str(Path(__file__).resolve()), "--worker", kind, json.dumps(spec)])
    return json.loads(run.stdout.strip().splitlines()[-1]), run.max_rss_mib


class PeakRssSampler(threading.Thread):
    """Peak RSS (VmHWM) of each JoeyNMT process under a root pid, sampled from /proc.

    Processes are keyed by the word after `joeynmt` on their command line (train, translate).
    VmHWM only grows, so a sample shortly before a process exits is its peak.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.root: int | None = None
        self.peak_kib: dict[str, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval_s):
            if self.root is not None:
                self.sample()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, grew = {self.root}, True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        for pid in tree:
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if "joeynmt" not in args or args.index("joeynmt") + 1 >= len(args):
                continue
            mode = args[args.index("joeynmt") + 1]
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib[mode] = max(self.peak_kib.get(mode, 0), int(line.split()[1]))


# --------------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints one JSON line


def worker_encode(spec: dict) -> dict:
    """Train the joint SentencePiece model and encode the corpus as `attncli train` does; save the ids."""
    from attncli.config import TrainConfig
    from attncli.corpus import read_pairs
    from attncli.training_data import encode_corpus, train_tokenizers

    config = TrainConfig(vocab_size=spec["vocab_size"], seed=spec["seed"])
    pairs = read_pairs(spec["train"])
    start = time.perf_counter()
    src_tok, tgt_tok = train_tokenizers(pairs, config)
    spm_s = time.perf_counter() - start
    data = encode_corpus(pairs, src_tok, tgt_tok)
    kept = [i for i in range(len(data.src)) if max(len(data.src[i]), len(data.tgt[i])) <= config.max_len]
    Path(spec["out"]).write_text(json.dumps({"vocab_size": len(src_tok), "src": [data.src[i] for i in kept],
                                             "tgt": [data.tgt[i] for i in kept]}))
    return {"spm_train_s": spm_s, "pairs": len(kept), "skipped": len(data.src) - len(kept), "vocab_size": len(src_tok)}


def worker_train(spec: dict) -> dict:
    """Target tokens/s of `attncli.training.train_step`, the update of `attncli train`, over
    `updates` updates after `warmup`, in the training precision `spec["precision"]`."""
    import torch

    import numpy as np

    from attncli.batch import epoch_batches, make_batch
    from attncli.config import TrainConfig
    from attncli.model import Seq2Seq
    from attncli.recipe import complete_recipe
    from attncli.schedule import scheduled_rate
    from attncli.training import set_seed, train_step
    from attncli.training_precision import resolve_train_precision

    data = json.loads(Path(spec["data"]).read_text())
    # JoeyNMT's architecture and batches, whatever the corpus size (the recipe would pick others below 60k pairs).
    config = TrainConfig(input_feeding=spec["input_feeding"], seed=spec["seed"], threads=spec["threads"],
                         train_precision=spec.get("precision", "auto"), batch_tokens=4096, dropout=0.2,
                         tied_output=False, warmup_steps=400, vocab_size=data["vocab_size"], lexical_model=False,
                         subword_sampling=0.0, aligner_guide=False)
    config, _ = complete_recipe(config, len(data["src"]))    # the rest (learning rate) as `attncli train` picks it
    precision = resolve_train_precision(config.train_precision)
    torch.set_num_threads(config.threads)
    set_seed(config.seed)
    model = Seq2Seq(config.model_config(data["vocab_size"], data["vocab_size"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, fused=True)
    src, tgt = data["src"], data["tgt"]
    batches = epoch_batches(np.array([len(s) for s in src]), np.array([len(t) for t in tgt]), config.batch_tokens,
                            config.seed, 1)
    model.train()
    tokens = sentences = 0
    start = time.perf_counter()
    for step in range(spec["warmup"] + spec["updates"]):
        if step == spec["warmup"]:
            tokens = sentences = 0
            start = time.perf_counter()
        indices = batches[step % len(batches)]
        batch = make_batch([src[i] for i in indices], [tgt[i] for i in indices])
        learning_rate = scheduled_rate(config, step + 1, 1.0)    # train()'s warm-up (no decay: no validation)
        loss, batch_tokens = train_step(model, optimizer, batch, config, precision, learning_rate)
        float(loss)                            # train() reads the loss every step
        tokens += batch_tokens
        sentences += len(indices)
    seconds = time.perf_counter() - start
    return {"updates": spec["updates"], "seconds": seconds, "target_tokens": tokens, "sentences": sentences,
            "tokens_per_s": tokens / seconds, "batches_per_epoch": len(batches), "precision": precision,
            "parameters": model.num_parameters(), "final_loss": float(loss)}


def worker_machine(spec: dict) -> dict:
    """The CPU and the arithmetic attncli chooses on it (attncli.machine.machine_report)."""
    import torch

    from attncli.machine import machine_report

    torch.set_num_threads(spec["threads"])
    return machine_report()


def worker_translate(spec: dict) -> dict:
    """Sentences/s of `Translator.translate` on the test sources, per beam size (model already loaded).

    BLEU and output length come along as context: decoding time grows with the output length.
    """
    import sacrebleu

    from attncli.corpus import read_pairs
    from attncli.translator import Translator

    pairs = read_pairs(spec["test"])
    sources, references = [p.source for p in pairs], [p.target for p in pairs]
    translator = Translator.load(spec["model"], spec["threads"])
    translator.translate(sources[:20], beam_size=1, split=False)          # first-call overheads
    result = {"sentences": len(sources)}
    runs = [(f"beam{beam}", translator, beam) for beam in spec["beams"]]
    if spec.get("float32_beams"):
        exact = Translator.load(spec["model"], spec["threads"], precision="float32")
        exact.translate(sources[:20], beam_size=1, split=False)
        runs += [(f"float32_beam{beam}", exact, beam) for beam in spec["float32_beams"]]
    for key, model, beam in runs:
        start = time.perf_counter()
        outputs = model.translate(sources, beam_size=beam, split=False)   # one sentence a line, as before splitting existed
        seconds = time.perf_counter() - start
        result[key] = {"seconds": seconds, "sents_per_s": len(sources) / seconds,
                       "mean_output_words": statistics.fmean(len(o.split()) for o in outputs),
                       "bleu": sacrebleu.corpus_bleu(outputs, [references]).score}
    return result


WORKERS = {"encode": worker_encode, "train": worker_train, "translate": worker_translate, "machine": worker_machine}


# --------------------------------------------------------------------------------------------
# attncli measurements


def measure_attncli(args: argparse.Namespace, train_tsv: Path, test_tsv: Path, sources: Path, work: Path) -> dict:
    """All attncli figures: training (without and with input feeding), translation, latency, memory."""
    figures: dict = {}
    data = work / "encoded.json"
    log(f"attncli: SentencePiece ({args.vocab_size} pieces) and encoding {train_tsv}")
    figures["encode"], _ = run_worker("encode", {"train": str(train_tsv), "vocab_size": args.vocab_size,
                                                 "seed": args.seed, "out": str(data)})
    figures["machine"], _ = run_worker("machine", {"threads": args.threads})
    log(f"attncli: machine: {format_machine_report(figures['machine'])}")
    for name, feeding, precision in (("train", False, "auto"), ("train_float32", False, "float32"),
                                     ("train_bfloat16", False, "bfloat16"), ("train_input_feeding", True, "auto")):
        log(f"attncli: training ({precision}), input feeding {'on' if feeding else 'off'}: "
            f"{args.warmup} warm-up + {args.updates} measured updates")
        result, rss = run_worker("train", {"data": str(data), "input_feeding": feeding, "seed": args.seed,
                                           "threads": args.threads, "warmup": args.warmup,
                                           "updates": args.updates, "precision": precision})
        figures[name] = dict(result, max_rss_mib=rss)
        log(f"attncli: {result['tokens_per_s']:.0f} target tokens/s ({result['precision']})")
    data.unlink()
    figures["timed"] = measure_timed_training(args, train_tsv, test_tsv, work)

    if args.model is None:
        log("attncli: no --model folder: translation figures skipped")
        return figures
    log(f"attncli: translating {args.translate_limit or 'all'} dev sentences with beam 1 and 5")
    result, rss = run_worker("translate", {"model": str(args.model), "test": str(test_tsv),
                                           "threads": args.threads, "beams": [1, 5], "float32_beams": [5]})
    figures["translate"] = dict(result, max_rss_mib=rss)
    cli = [str(Path(sys.executable).parent / "attncli"), "translate", "--model", str(args.model),
           "--threads", str(args.threads)]
    log("attncli: whole translate command over the same sentences, beam 5")
    run = run_child(cli + ["--beam", "5"], stdin_path=sources)
    figures["translate_command"] = {"sentences": len(run.stdout.splitlines()), "wall_s": run.wall_s,
                                    "sents_per_s": len(run.stdout.splitlines()) / run.wall_s,
                                    "max_rss_mib": run.max_rss_mib}
    log(f"attncli: single-sentence latency, {args.latency_runs} runs after one warm-up")
    plain = [str(Path(sys.executable).parent / "attncli"), "translate", "--model", str(args.model), "hola"]
    figures["latency"] = measure_latency(plain, args.latency_runs)   # as a user types it: default threads
    return figures


def measure_timed_training(args: argparse.Namespace, train_tsv: Path, test_tsv: Path, work: Path) -> dict:
    """`attncli train` with its defaults (JoeyNMT's architecture) for `--minutes`, then its dev
    BLEU/chrF with beam 5 and its translation speed: the equal-time and same-architecture rows.

    It validates on 1% of the training file it holds out itself (the default without --dev), so
    the dev set stays unseen, as it is for JoeyNMT; its clock includes SentencePiece and encoding.
    """
    attncli = str(Path(sys.executable).parent / "attncli")
    model = work / f"attncli-{args.minutes:g}min"
    log(f"attncli: `attncli train` for {args.minutes:g} minutes (default settings, no lexical model; its progress follows)")
    run = run_child([attncli, "train", str(train_tsv), "--out", str(model), "--max-minutes", str(args.minutes),
                     "--threads", str(args.threads), "--seed", str(args.seed), "--vocab-size", str(args.vocab_size),
                     "--no-lexical-model"])    # JoeyNMT has none: the same architecture on both sides
    from attncli.modelfile import read_model_info

    card = read_model_info(model)
    figures = {"train_wall_s": run.wall_s, "train_max_rss_mib": run.max_rss_mib,
               "training_seconds": card.training_seconds, "best": card.best, "history": card.history}
    log("attncli: dev BLEU/chrF of that model, beam 5")
    scores = run_child([attncli, "evaluate", str(test_tsv), "--model", str(model), "--beam", "5", "--json",
                        "--threads", str(args.threads)])
    figures["dev"] = json.loads(scores.stdout)
    log("attncli: translation speed of that model, beam 5 (int8 and float32 products)")
    result, rss = run_worker("translate", {"model": str(model), "test": str(test_tsv), "threads": args.threads,
                                           "beams": [5], "float32_beams": [5]})
    figures["translate"] = dict(result, max_rss_mib=rss)
    return figures


def measure_latency(command: list[str], runs: int, env: dict[str, str] | None = None,
                    stdin_path: Path | None = None, stderr_path: Path | None = None) -> dict:
    """Median wall time (process start to exit) of `runs` runs, after one untimed run (file cache)."""
    run_child(command, stdin_path, env, stderr_path=stderr_path)
    results = [run_child(command, stdin_path, env, stderr_path=stderr_path) for _ in range(runs)]
    walls = [r.wall_s for r in results]
    return {"median_s": statistics.median(walls), "runs_s": walls,
            "output": results[-1].stdout.strip(), "max_rss_mib": max(r.max_rss_mib for r in results)}


# --------------------------------------------------------------------------------------------
# JoeyNMT measurements (the peer harness in ../shared/peers/joey)


def parse_key_values(text: str) -> dict:
    """`joey_name=value` lines (run.sh's report) as a dict; numbers become floats."""
    figures: dict = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("joey_"):
            try:
                figures[key] = float(value)
            except ValueError:
                figures[key] = value
    return figures


def measure_joey(args: argparse.Namespace, train_tsv: Path, test_tsv: Path, work: Path) -> dict:
    """Run run.sh (train `--minutes`, translate the test TSV with beam 5), then its latency."""
    workdir = work / "joey"
    shutil.rmtree(workdir, ignore_errors=True)               # no stale checkpoints from an earlier run
    env = dict(os.environ, JOEY_VENV=str(args.joey_venv), JOEY_THREADS=str(args.threads), SRC_LANG="es",
               TRG_LANG="en", VOCAB_SIZE=str(args.vocab_size), VALID_FREQ="1000000000", SEED=str(args.seed))
    command = ["bash", str(JOEY_DIR / "run.sh"), str(train_tsv), str(test_tsv), str(test_tsv), str(workdir),
               str(args.minutes)]
    log(f"JoeyNMT: run.sh, {args.minutes:g} minutes of training (its progress follows)")
    sampler = PeakRssSampler()
    sampler.start()
    run = run_child(command, env=env, on_start=lambda pid: setattr(sampler, "root", pid))
    sampler.done.set()
    sampler.join()
    figures = parse_key_values(run.stdout)
    figures["run_sh_wall_s"] = run.wall_s
    figures["run_sh_max_rss_mib"] = run.max_rss_mib
    figures.update({f"{mode}_max_rss_mib": kib / 1024 for mode, kib in sampler.peak_kib.items()})
    hypotheses = (workdir / "test.hyp").read_text(encoding="utf-8").splitlines()
    figures["mean_output_words"] = statistics.fmean(len(h.split()) for h in hypotheses) if hypotheses else 0.0

    log(f"JoeyNMT: single-sentence latency, {args.latency_runs} runs after one warm-up")
    one = work / "one.es"
    one.write_text("hola\n", encoding="utf-8")
    translate = [str(args.joey_venv / "bin" / "python"), "-m", "joeynmt", "translate",
                 str(workdir / "config.translate.yaml")]
    threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
               "TOKENIZERS_PARALLELISM": "false"}
    figures["latency"] = measure_latency(translate, args.latency_runs, dict(os.environ, **threads), one,
                                         stderr_path=work / "joey-latency.stderr")
    return figures


def load_reused(path: Path, side: str) -> dict:
    """Figures of one side from a previous --json output (or, for JoeyNMT, run.sh's saved stdout)."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)[side]
    except json.JSONDecodeError:
        if side == "joey":
            return parse_key_values(text)
        raise
    except KeyError:
        raise SystemExit(f"{path}: no '{side}' figures in it") from None


# --------------------------------------------------------------------------------------------
# Table


def get(figures: dict | None, *keys: str):
    """figures[k1][k2]... or None where any part is missing."""
    for key in keys:
        if not isinstance(figures, dict) or key not in figures:
            return None
        figures = figures[key]
    return figures


def cell(value, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def table(attncli: dict | None, joey: dict | None, minutes: float) -> str:
    """The markdown table: figure | attncli | JoeyNMT | ratio (attncli / JoeyNMT)."""
    minutes = f"{minutes:g}"
    rows = [
        (f"training (default precision: {get(attncli, 'train', 'precision')}), target tokens/s ↑",
         get(attncli, "train", "tokens_per_s"), get(joey, "joey_train_tokens_per_s"), "{:,.0f}"),
        ("training, `--train-precision float32`, target tokens/s ↑", get(attncli, "train_float32", "tokens_per_s"),
         get(joey, "joey_train_tokens_per_s"), "{:,.0f}"),
        ("training, `--train-precision bfloat16`, target tokens/s ↑", get(attncli, "train_bfloat16", "tokens_per_s"),
         get(joey, "joey_train_tokens_per_s"), "{:,.0f}"),
        ("training with input feeding, target tokens/s ↑", get(attncli, "train_input_feeding", "tokens_per_s"),
         get(joey, "joey_train_tokens_per_s"), "{:,.0f}"),
        ("training, peak RSS MiB ↓", get(attncli, "train", "max_rss_mib"), get(joey, "train_max_rss_mib"), "{:,.0f}"),
        ("training with input feeding, peak RSS MiB ↓", get(attncli, "train_input_feeding", "max_rss_mib"),
         get(joey, "train_max_rss_mib"), "{:,.0f}"),
        ("SentencePiece training, s ↓", get(attncli, "encode", "spm_train_s"), get(joey, "joey_spm_train_s"),
         "{:,.1f}"),
        (f"dev BLEU after {minutes} min of training, beam 5 ↑", get(attncli, "timed", "dev", "bleu"),
         get(joey, "joey_bleu"), "{:,.1f}"),
        (f"dev chrF after {minutes} min of training, beam 5 ↑", get(attncli, "timed", "dev", "chrf"),
         get(joey, "joey_chrf"), "{:,.1f}"),
        (f"translation, beam 5 (int8, the default), sentences/s, same architecture ({minutes}-min models) ↑",
         get(attncli, "timed", "translate", "beam5", "sents_per_s"), get(joey, "joey_translate_sents_per_s"),
         "{:,.1f}"),
        (f"translation, beam 5, `--precision float32`, sentences/s, same architecture ({minutes}-min models) ↑",
         get(attncli, "timed", "translate", "float32_beam5", "sents_per_s"), get(joey, "joey_translate_sents_per_s"),
         "{:,.1f}"),
        (f"mean output words, beam 5, {minutes}-min models (context)",
         get(attncli, "timed", "translate", "beam5", "mean_output_words"), get(joey, "mean_output_words"), "{:,.2f}"),
        ("translation, greedy (int8), sentences/s, shipped model ↑", get(attncli, "translate", "beam1", "sents_per_s"),
         None, "{:,.1f}"),
        ("translation, beam 5 (int8, the default), sentences/s, shipped model ↑", get(attncli, "translate", "beam5", "sents_per_s"),
         get(joey, "joey_translate_sents_per_s"), "{:,.1f}"),
        ("translation, beam 5, `--precision float32`, sentences/s, shipped model ↑",
         get(attncli, "translate", "float32_beam5", "sents_per_s"),
         get(joey, "joey_translate_sents_per_s"), "{:,.1f}"),
        ("translate command, beam 5, sentences/s (start-up included) ↑",
         get(attncli, "translate_command", "sents_per_s"), get(joey, "joey_translate_sents_per_s_wall"), "{:,.1f}"),
        ("translate command, peak RSS MiB ↓", get(attncli, "translate_command", "max_rss_mib"),
         get(joey, "translate_max_rss_mib"), "{:,.0f}"),
        ("one sentence (\"hola\"), translate command, s (median) ↓", get(attncli, "latency", "median_s"),
         get(joey, "latency", "median_s"), "{:,.2f}"),
        ("mean output words, beam 5, shipped model (context)", get(attncli, "translate", "beam5", "mean_output_words"),
         None, "{:,.2f}"),
        ("dev BLEU, beam 5 (int8), shipped model (context)", get(attncli, "translate", "beam5", "bleu"), None, "{:,.2f}"),
        ("dev BLEU, beam 5, `--precision float32`, shipped model (context)",
         get(attncli, "translate", "float32_beam5", "bleu"), None, "{:,.2f}"),
    ]
    lines = ["| figure | attncli | JoeyNMT | ratio |", "|---|---:|---:|---:|"]
    for name, ours, theirs, fmt in rows:
        ratio = f"{ours / theirs:.2f}×" if ours is not None and theirs else "—"
        lines.append(f"| {name} | {cell(ours, fmt)} | {cell(theirs, fmt)} | {ratio} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main


def prepare_inputs(args: argparse.Namespace, work: Path) -> tuple[Path, Path, Path]:
    """Shuffled (and maybe cut) training TSV, the dev TSV cut to --translate-limit, and its sources."""
    from attncli.corpus import read_pairs

    pairs = read_pairs(args.train)
    random.Random(args.seed).shuffle(pairs)                  # the corpus file is sorted by length
    if args.train_limit:
        pairs = pairs[: args.train_limit]
    train_tsv = work / "train.shuffled.tsv"
    train_tsv.write_text("".join(f"{p.source}\t{p.target}\n" for p in pairs), encoding="utf-8")
    dev = read_pairs(args.dev)
    if args.translate_limit:
        dev = dev[: args.translate_limit]
    test_tsv, sources = work / "test.tsv", work / "test.es"
    test_tsv.write_text("".join(f"{p.source}\t{p.target}\n" for p in dev), encoding="utf-8")
    sources.write_text("".join(f"{p.source}\n" for p in dev), encoding="utf-8")
    return train_tsv, test_tsv, sources


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "es-en",
                        help="attncli model folder to translate with (default: models/es-en)")
    parser.add_argument("--train", type=Path, default=CORPUS / "train.tsv", help="training TSV")
    parser.add_argument("--dev", type=Path, default=CORPUS / "dev.tsv", help="sentences to translate (TSV)")
    parser.add_argument("--updates", type=int, default=200, help="measured attncli training updates")
    parser.add_argument("--warmup", type=int, default=5, help="attncli updates before measuring")
    parser.add_argument("--train-limit", type=int, default=0, help="use the first N shuffled pairs (0: all)")
    parser.add_argument("--translate-limit", type=int, default=0, help="translate the first N dev sentences (0: all)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="joint SentencePiece pieces")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for both tools")
    parser.add_argument("--latency-runs", type=int, default=5, help="runs of the one-sentence command")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", "--joey-minutes", type=float, default=15.0,
                        help="wall-clock training budget of each tool for the equal-time rows (minutes)")
    parser.add_argument("--joey-venv", type=Path, default=Path(os.environ.get("JOEY_VENV", DEFAULT_JOEY_VENV)))
    parser.add_argument("--no-joey", action="store_true", help="measure attncli only")
    parser.add_argument("--joey-from", type=Path, help="reuse JoeyNMT figures: a previous --json, or run.sh's stdout")
    parser.add_argument("--attncli-from", type=Path, help="reuse attncli figures from a previous --json")
    parser.add_argument("--workdir", type=Path, help="keep intermediate files here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write all raw figures to this file")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.model is not None and not (args.model / "config.json").is_file():
        if args.model != parser.get_default("model"):
            parser.error(f"--model {args.model}: not an attncli model folder")
        args.model = None   # the shipped model is not there yet: training figures only
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        kind, spec = args.worker
        print(json.dumps(WORKERS[kind](json.loads(spec))))
        return
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"warning: load average {load:.1f}: other jobs will slow both tools down")
    started = time.time()
    report: dict = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                                 if k != "worker"},
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version(), "load_average_at_start": load,
                                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work_context = tempfile.TemporaryDirectory(prefix="attncli-bench-") if not args.workdir else None
    work = Path(work_context.name) if work_context else args.workdir.resolve()
    try:
        train_tsv, test_tsv, sources = prepare_inputs(args, work)
        attncli = load_reused(args.attncli_from, "attncli") if args.attncli_from else \
            measure_attncli(args, train_tsv, test_tsv, sources, work)
        if args.no_joey:
            joey = None
        elif args.joey_from:
            joey = load_reused(args.joey_from, "joey")
        elif not (args.joey_venv / "bin" / "python").exists():
            raise SystemExit(f"no JoeyNMT virtualenv at {args.joey_venv}: run "
                             f"bash {JOEY_DIR / 'setup_venv.sh'}, or pass --no-joey")
        else:
            joey = measure_joey(args, train_tsv, test_tsv, work)
    finally:
        if work_context:
            shutil.rmtree(work, ignore_errors=True)
    report.update(attncli=attncli, joey=joey, wall_s=time.time() - started)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        log(f"raw figures written to {args.json}")
    if get(attncli, "machine"):
        print(f"Machine: {format_machine_report(attncli['machine'])}\n")
    print(table(attncli, joey, args.minutes))
    print("\n" + footnote(args, attncli, joey))


def footnote(args: argparse.Namespace, attncli: dict, joey: dict | None) -> str:
    """What the table's figures came from."""
    parts = ["ratio = attncli / JoeyNMT; ↑ higher is better, ↓ lower is better.",
             f"{os.cpu_count()} CPUs, {args.threads} thread(s) per tool."]
    if args.attncli_from:
        parts.append(f"attncli figures from {args.attncli_from}.")
    else:
        parts.append(f"attncli: {get(attncli, 'train', 'updates')} updates after {args.warmup} warm-up; "
                     f"equal-time rows: `attncli train` defaults for {args.minutes:g} minutes, validating on "
                     f"1% of the training file it holds out.")
    if args.joey_from:
        parts.append(f"JoeyNMT figures from {args.joey_from}.")
    elif joey is not None:
        parts.append(f"JoeyNMT: {args.minutes:g} minutes of training, "
                     f"{get(joey, 'joey_train_steps') or 0:.0f} updates, checkpoint translated with beam 5.")
    return " ".join(parts)


if __name__ == "__main__":
    main()
