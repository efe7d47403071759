"""The `attncli` command line: parse options, call the library, print results.

stdout carries results only (translations, tables, scores); progress, logs and errors go to
stderr. A user error ends in one line `attncli: error: ...` and exit status 1 (2 for a bad
command line, 130 for Ctrl-C). Heavy imports (torch) happen inside commands so `--help` is fast.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
from contextlib import contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from typing_extensions import Annotated

from .config import DECODE_BATCH_HELP, DEVICES_HELP, PRECISIONS, TRAIN_PRECISIONS, TrainConfig
from .errors import AttncliError, CorpusError, InputError, OptionError

# -h is --help on every command (click's contexts pass it down); --install-completion and
# --show-completion are Typer's, and cost no start-up time (typer imports its completion code anyway).
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  context_settings=HELP_OPTIONS, help="Train, run and inspect attention-based translation models.")
inspect_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                          context_settings=HELP_OPTIONS,
                          help="Look inside a model: attention alignments and their quality.")
app.add_typer(inspect_app, name="inspect")

DEFAULTS = TrainConfig()   # `attncli train` option defaults are the TrainConfig defaults
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Model folder, or a model name: see `attncli models` (shipped: es-en, fr-en).")]


Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)


SplitOption = Annotated[bool, typer.Option(
    "--split/--no-split",
    help="Split each line into sentences (the models are trained on single sentences) and an over-long "
         "sentence at its clauses; the translations of a line stay on one line. --no-split reads each line as one sentence.")]


def note_unusual_input(translator) -> None:
    """A stderr line each if the model read any characters as <unk> and if any source words never
    occurred in its training corpus, since the last call: once at the end of a command, after
    each line in an interactive session."""
    if translator.unknown_characters:
        from .text import unknown_note

        sys.stderr.write(f"attncli: note: {unknown_note(translator.unknown_characters)}\n")
    if translator.unseen_words:
        from .source_words import unseen_note

        sys.stderr.write(f"attncli: note: {unseen_note(list(translator.unseen_words))}\n")
    translator.unknown_characters.clear()
    translator.unseen_words.clear()


PrecisionOption = Annotated[Precision, typer.Option(
    help="Arithmetic of the decoder's recurrent and output products in search. On the CPU: int8 (fixed scale, "
         "~1.6x faster, dev BLEU within 0.05 of float32) or float32; on a GPU: float32, float16 or bfloat16. "
         "auto: int8 on the CPU, bfloat16 (else float16) on a GPU.")]
DeviceOption = Annotated[str, typer.Option(help=f"Where torch runs: {DEVICES_HELP}.")]


TrainPrecision = Enum("TrainPrecision", {name: name for name in TRAIN_PRECISIONS}, type=str)


class OutputFormat(str, Enum):
    table = "table"
    pharaoh = "pharaoh"
    json = "json"


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, then exit. Among torchrun's processes the first of each machine
    (LOCAL_RANK 0) says it: each machine's launcher shows its own processes' stderr, and an error
    may be one machine's alone (too few GPUs there)."""
    if os.environ.get("LOCAL_RANK", "0") == "0":
        sys.stderr.write(f"attncli: error: {message}\n")
        sys.stderr.flush()
    raise SystemExit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a user-fixable error into one stderr line and a non-zero exit status.

    A reader that goes away (`| head`) ends the command quietly with status 141, as a process
    killed by SIGPIPE would (click would turn it into status 1, the same as a real error).
    """
    try:
        yield
    except AttncliError as exc:
        fail(str(exc))
    except BrokenPipeError:
        _silence_broken_pipe()
        raise typer.Exit(141) from None


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def stdout_console():
    from rich.console import Console

    class StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            """rich exits with status 1 here; let reported_errors end it with 141 like other output."""
            self.quiet = True
            raise BrokenPipeError

    return StdoutConsole(soft_wrap=False)


def _print_version(value: bool) -> None:
    if value:
        from . import version

        typer.echo(f"attncli {version()}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print attncli's version and exit.")] = False,
) -> None:
    """Train, run and inspect attention-based translation models."""


@app.command()
def train(
    corpus: Annotated[Path, typer.Argument(metavar="CORPUS", help="Training pairs: UTF-8, one source<TAB>target per line.")],
    dev: Annotated[Optional[Path], typer.Option(help="Dev pairs for validation; default: hold out 1% of CORPUS (at most 2000 pairs).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Model folder to write; default: models/<corpus name>.")] = None,
    epochs: Annotated[int, typer.Option(help="Stop after this many epochs.")] = DEFAULTS.epochs,
    max_minutes: Annotated[float, typer.Option(help="Stop after this many minutes (0: no limit).")] = DEFAULTS.max_minutes,
    patience: Annotated[int, typer.Option(help="Stop after this many validations without progress (dev BLEU up, or dev loss 2% below its lowest), counted after the first 1,000 updates.")] = DEFAULTS.patience,
    valid_every: Annotated[int, typer.Option(help="Validate every N updates (0: once per epoch, at least 100 updates apart).")] = DEFAULTS.valid_every,
    vocab_size: Annotated[Optional[int], typer.Option(help="SentencePiece vocabulary size. Default: from the corpus size (2k-8k; README 'Train').")] = None,
    joint_vocab: Annotated[bool, typer.Option(help="One SentencePiece model for both languages.")] = DEFAULTS.joint_vocab,
    embed_size: Annotated[int, typer.Option(help="Embedding size.")] = DEFAULTS.embed_size,
    hidden_size: Annotated[int, typer.Option(help="Decoder (and attention) size; the encoder has half per direction.")] = DEFAULTS.hidden_size,
    encoder_layers: Annotated[int, typer.Option(help="Encoder LSTM layers.")] = DEFAULTS.encoder_layers,
    decoder_layers: Annotated[int, typer.Option(help="Decoder LSTM layers.")] = DEFAULTS.decoder_layers,
    dropout: Annotated[Optional[float], typer.Option(help="Dropout rate. Default: from the corpus size (0.3 below 30k pairs, else 0.2).")] = None,
    input_feeding: Annotated[bool, typer.Option(help="Feed the previous attentional state to the decoder (slower).")] = DEFAULTS.input_feeding,
    tied_output: Annotated[Optional[bool], typer.Option("--tied-output/--no-tied-output", help="Share target embeddings and output layer (needs embed = hidden size). Default: from the corpus size (tied below 30k pairs).")] = None,
    attention_bias: Annotated[bool, typer.Option(help="Add a bias to the attention's output projection, tanh(W_c [c; h] + b_c) (Luong's has none).")] = DEFAULTS.attention_bias,
    lexical_model: Annotated[Optional[bool], typer.Option("--lexical-model/--no-lexical-model", help="Nguyen & Chiang's lexical model: the attention's average of the source embeddings also scores the output words. Default: from the corpus size (on, except for 60k pairs or more without a --max-minutes of 90 or less).")] = None,
    batch_tokens: Annotated[Optional[int], typer.Option(help="Tokens per batch, padding included. Default: from the corpus size (2,048 below 30k pairs, else 4,096).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help="Adam learning rate after warm-up. Default: from the corpus size (0.001 below 5k pairs, else 0.002).")] = None,
    warmup_steps: Annotated[Optional[int], typer.Option(help="Linear learning-rate warm-up, in updates. Default: from the corpus size (100 below 5k pairs, else 400).")] = None,
    lr_decay: Annotated[float, typer.Option(help="Multiply the learning rate by this after a validation without progress (after the first 1,000 updates).")] = DEFAULTS.lr_decay,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing.")] = DEFAULTS.label_smoothing,
    word_dropout: Annotated[float, typer.Option(help="Word dropout: each training piece (source and target input) becomes <unk> with this probability.")] = DEFAULTS.word_dropout,
    subword_sampling: Annotated[Optional[float], typer.Option(help="Segment each training pair anew at every update, drawn from SentencePiece's unigram model with this smoothing alpha, 0 to 1000 (0: off; smaller: more varied). Default: from the corpus size (1.0 below 3k pairs, else off).")] = None,
    clip_norm: Annotated[float, typer.Option(help="Gradient norm clipping.")] = DEFAULTS.clip_norm,
    max_len: Annotated[int, typer.Option(help="Skip training pairs longer than this many pieces.")] = DEFAULTS.max_len,
    beam: Annotated[int, typer.Option(help="Default beam size stored with the model.")] = DEFAULTS.beam,
    length_penalty: Annotated[float, typer.Option(help="Default length normalisation exponent stored with the model.")] = DEFAULTS.length_penalty,
    average_last: Annotated[int, typer.Option(help="Average the weights of the last N best checkpoints at the end.")] = DEFAULTS.average_last,
    train_precision: Annotated[TrainPrecision, typer.Option(help="Training arithmetic: auto (bfloat16 on CPUs with AVX-512 BF16 or AMX, else float32; on a GPU bfloat16, else float16), float32, bfloat16, or float16 (GPUs only, with a gradient scaler): matrix products; float32 weights and loss.")] = TrainPrecision(DEFAULTS.train_precision),
    fp16_weights: Annotated[bool, typer.Option(help="Save weights in float16 (half the size).")] = DEFAULTS.fp16_weights,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data order, same model.")] = DEFAULTS.seed,
    threads: Annotated[int, typer.Option(help="CPU threads (0: all cores).")] = DEFAULTS.threads,
    guide_alignments: Annotated[Optional[Path], typer.Option(help="Pharaoh word links for each CORPUS pair (e.g. from eflomal) to guide the attention.")] = None,
    guide_weight: Annotated[float, typer.Option(help="Weight of the guided-alignment loss (with --guide-alignments or --aligner-guide).")] = DEFAULTS.guide_weight,
    aligner_guide: Annotated[Optional[bool], typer.Option("--aligner-guide/--no-aligner-guide", help="Guide the attention with word links that attncli's built-in statistical aligner (fast_align's model) finds in CORPUS. Default: from the corpus size (on below 60k pairs, and above with a --max-minutes of 90 or less).")] = None,
    init_from: Annotated[Optional[str], typer.Option(help="Fine-tune this model (folder or shipped name): start from its weights; its vocabulary and architecture replace the size and --lexical-model options.")] = None,
    watch: Annotated[Optional[list[str]], typer.Option(help="Record this source sentence's attention at every validation (repeatable; the dev reference is its target when it is a dev sentence, else the model's own translation); `attncli inspect history` shows it.")] = None,
    watch_file: Annotated[Optional[Path], typer.Option(help="Pairs to watch likewise: source<TAB>target[<TAB>gold Pharaoh links] per line.")] = None,
    device: DeviceOption = "auto",
    nproc: Annotated[int, typer.Option(help="Train with N processes on this machine (starts torchrun's launcher; README 'GPU and many machines').")] = 1,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Folder for the encoded corpus, reused by later runs on the same corpus (README 'Large corpora'). Default: $ATTNCLI_CACHE_DIR, else the user cache folder.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the model already in --out (without it, train refuses to).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the stopped run saved in OUT.train-state (same CORPUS and options; --threads and --max-minutes may change).")] = False,
) -> None:
    """Train a model on CORPUS and write it to --out.

    The folder is written atomically whenever dev BLEU improves, so it always holds the best
    checkpoint so far.
    Ctrl-C or SIGTERM stops at the end of the current update and saves the training state in
    OUT.train-state; --resume continues it to the same model an uninterrupted run gives.
    """
    with reported_errors():
        from .training import TrainingInterrupted, train as run_training

        options = dict(locals())                 # every TrainConfig field is an option of the same name
        options["train_precision"] = train_precision.value
        options.update(watch=tuple(watch or ()), watch_file=str(watch_file) if watch_file is not None else None)
        config = TrainConfig(**{field: options[field] for field in TrainConfig.__dataclass_fields__})
        if nproc != 1:
            from .distributed import launch_processes

            config.validate()                    # once here, not once per process
            raise SystemExit(launch_processes(nproc, _COMMAND_LINE))   # the processes said what happened
        out_dir = out or Path("models") / corpus.stem
        main_rank = os.environ.get("RANK", "0") == "0"
        from .progress import TrainingProgress

        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            with TrainingProgress(stderr_console(), quiet=not main_rank) as progress:
                result = run_training(corpus, dev, out_dir, config, on_event=progress.update, resume=resume, guide_path=guide_alignments,
                                      init_from=init_from, stop_signals=(signal.SIGINT, signal.SIGTERM), overwrite=overwrite,
                                      cache_dir=cache_dir, device=device)
        except TrainingInterrupted as stopped:
            if main_rank:
                _report_interrupted(stopped.result, out_dir)
            raise SystemExit(130)
        finally:
            signal.signal(signal.SIGTERM, previous)
        if main_rank:
            _print_train_summary(result, max_len)


def _report_interrupted(result, out_dir: Path) -> None:
    saved = f"; the best model so far is in {out_dir}" if result.best_step else "; no model was saved yet"
    if result.state_dir is not None:
        saved += f"; continue with the same command and --resume (state in {result.state_dir})"
    sys.stderr.write(f"attncli: interrupted at update {result.steps}{saved}.\n")


def _print_train_summary(result, max_len: int) -> None:
    minutes = result.elapsed_s / 60
    typer.echo(f"model: {result.model_dir}")
    typer.echo(f"best dev BLEU {result.best_bleu:.2f}  chrF {result.best_chrf:.2f}  loss {result.best_dev_loss:.3f} (update {result.best_step})")
    typer.echo(f"updates {result.steps}, {minutes:.1f} min, {result.parameters:,} parameters; stopped: {result.stop_reason}")
    if result.skipped_pairs:
        typer.echo(f"skipped {result.skipped_pairs} training pairs longer than {max_len} pieces")
    if result.state_dir is not None:
        typer.echo(f"training state kept in {result.state_dir}: --resume with a larger --max-minutes continues it")


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@app.command()
def translate(
    sentence: Annotated[Optional[str], typer.Argument(metavar="SENTENCE", help="Sentence to translate; default: each line of stdin (typed at a terminal: one at a time, after a prompt).")] = None,
    model: ModelOption = "es-en",
    beam: Annotated[Optional[int], typer.Option(help="Beam size; 1 is greedy search. Default: the model's.")] = None,
    length_penalty: Annotated[Optional[float], typer.Option(help="Length normalisation exponent. Default: the model's.")] = None,
    batch_tokens: Annotated[Optional[int], typer.Option(help=DECODE_BATCH_HELP)] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for stdin of more than 32 lines, which torch translates (0: all cores).")] = 0,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = "auto",
    split: SplitOption = True,
) -> None:
    """Translate SENTENCE, or each line of stdin.

    One output line per input line, in order; stdin typed at a terminal is translated line by
    line, after a prompt on stderr, until Ctrl-D.

    A single SENTENCE, or stdin of at most 32 lines, runs on a NumPy copy of the model's
    arithmetic (same output, no torch start-up: a quarter of a second); more stdin lines are
    batched through torch, on a GPU where there is one (--device).
    """
    with reported_errors():
        if sentence is not None and not sentence.strip():
            raise OptionError("the sentence is empty.")
        from .translator import Translator

        progress, interactive = nullcontext(iter), False
        if sentence is not None:
            translator = Translator.load(model, threads, precision.value, sentences=1, device=device)
            outputs = translator.translate_stream([sentence], beam, length_penalty, batch_tokens, split=split)
        elif sys.stdin.isatty():             # typed at a terminal: each line as soon as it is typed
            interactive = True
            translator = Translator.load(model, threads, precision.value, sentences=1, device=device)
            outputs = _interactively(lambda lines: translator.translate_stream(
                lines, beam, length_penalty, batch_tokens, chunk=1, split=split), "translate")
        else:
            progress = line_progress("translating", _stdin_line_count)
            translator, lines = Translator.for_lines(_stdin_text_lines(), model, threads, precision.value, device)
            outputs = translator.translate_stream(lines, beam, length_penalty, batch_tokens, source_name="stdin",
                                                  split=split)
        with progress as counted:
            for output in counted(outputs):
                sys.stdout.write(output + "\n")
                if interactive:                  # the line's notes before the next prompt
                    sys.stdout.flush()
                    note_unusual_input(translator)
        sys.stdout.flush()
        note_unusual_input(translator)


def _interactively(results: Callable[[Iterator[str]], Iterator], action: str) -> Iterator:
    """Interactive mode (stdin is a terminal, like fairseq-interactive): `results(lines)` of the lines
    typed after a prompt on stderr, each as soon as it is typed. A line that cannot be used is
    reported on stderr and the next one read; Ctrl-D or Ctrl-C ends the session (status 0). Bad
    option values are refused before the first prompt (`results` checks them before reading)."""
    lines = _typed_lines(action)
    try:
        while True:
            try:
                yield from results(lines)
                return
            except InputError as exc:
                sys.stderr.write(f"attncli: error: {exc}\n")
    except KeyboardInterrupt:
        sys.stderr.write("\n")


def _typed_lines(action: str) -> Iterator[str]:
    """Lines typed at the terminal, each after a prompt on stderr; blank lines are skipped, and a
    line that is not UTF-8 is reported and skipped."""
    from .corpus import decode_line

    sys.stderr.write(f"attncli: type a sentence and press Enter to {action} it; Ctrl-D ends.\n")
    for line_no in itertools.count(1):
        sys.stdout.flush()                      # the translation of the line before, first
        sys.stderr.write("> ")
        sys.stderr.flush()
        raw = sys.stdin.buffer.readline()
        if not raw:                             # Ctrl-D
            sys.stderr.write("\n")
            return
        try:
            line = decode_line(raw, "stdin", line_no).rstrip("\n").rstrip("\r")
        except CorpusError as exc:
            sys.stderr.write(f"attncli: error: {exc}\n")
            continue
        if line.strip():
            yield line


def line_progress(description: str, count: Callable[[], Optional[int]] = lambda: None,
                  results_on_stdout: bool = True):
    """A context giving `counted(items)`, which passes a job's results through: while they come, a
    bar on stderr (progress.LineProgress: lines, lines/s, time left when `count()` knows the total)
    if stderr is a terminal and, when results are written to stdout meanwhile, stdout is not."""
    if not sys.stderr.isatty() or (results_on_stdout and sys.stdout.isatty()):
        return nullcontext(iter)
    from .progress import LineProgress

    return LineProgress(stderr_console(), description, count())


def _stdin_line_count() -> Optional[int]:
    """The lines left in stdin if it is a file (`< big.txt`), read without moving its position;
    None for a pipe or a terminal (then the total is unknown)."""
    import os
    import stat

    try:
        fd = sys.stdin.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        offset, count, last = os.lseek(fd, 0, os.SEEK_CUR), 0, b"\n"
        while block := os.pread(fd, 1 << 20, offset):
            count, offset, last = count + block.count(b"\n"), offset + len(block), block[-1:]
    except (OSError, ValueError):          # no file descriptor (a test's stdin), or unreadable
        return None
    return count + (last != b"\n")


def _stdin_text_lines() -> Iterator[str]:
    """The lines of stdin without their line ends ("\\n" or "\\r\\n")."""
    return (line.rstrip("\n").rstrip("\r") for line in _stdin_lines())


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin decoded as UTF-8; a bad byte is an error naming the line."""
    from .corpus import decode_line

    for line_no, raw in enumerate(sys.stdin.buffer, start=1):
        yield decode_line(raw, "stdin", line_no)


@app.command()
def evaluate(
    test: Annotated[Path, typer.Argument(metavar="TEST", help="Test pairs: source<TAB>reference per line.")],
    model: ModelOption = "es-en",
    beam: Annotated[Optional[int], typer.Option(help="Beam size. Default: the model's.")] = None,
    length_penalty: Annotated[Optional[float], typer.Option(help="Length normalisation exponent. Default: the model's.")] = None,
    batch_tokens: Annotated[Optional[int], typer.Option(help=DECODE_BATCH_HELP)] = None,
    output: Annotated[Optional[Path], typer.Option(help="Also write the translations to this file, one line per TEST pair.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
    threads: Annotated[int, typer.Option(help="CPU threads (0: all cores).")] = 0,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = "auto",
    split: Annotated[bool, typer.Option(
        "--split/--no-split",
        help="Split each source line into sentences, as translate does. Off by default: a test line is one "
             "segment with one reference, and scores stay comparable with those published (21 of the 2,000 "
             "Tatoeba es-en dev lines hold two sentences: BLEU 50.70 split, 50.45 not).")] = False,
) -> None:
    """Translate TEST's sources and score them: BLEU, chrF, TER.

    TEST holds source<TAB>reference pairs; the translations are scored against the references
    with sacrebleu (its signatures are printed).
    """
    with reported_errors():
        import time

        from .corpus import read_pairs
        from .evaluation import score_translations
        from .translator import Translator

        pairs = read_pairs(test)
        translator = Translator.load(model, threads, precision.value, device=device)
        start = time.monotonic()
        outputs = translator.translate_stream([pair.source for pair in pairs], beam, length_penalty, batch_tokens,
                                              split=split)
        with _output_file(output) as written, line_progress("evaluating", lambda: len(pairs), False) as counted:
            hypotheses = [written(hypothesis) for hypothesis in counted(outputs)]
        seconds = time.monotonic() - start
        scores = score_translations(hypotheses, [pair.target for pair in pairs])
        scores.update(sentences=len(pairs), seconds=round(seconds, 2),
                      beam=beam or translator.default_beam, model=str(model), precision=translator.precision,
                      device=translator.device)
        if as_json:
            typer.echo(json.dumps(scores, ensure_ascii=False))
        else:
            for metric in ("bleu", "chrf", "ter"):
                typer.echo(f"{metric.upper():5s} {scores[metric]:6.2f}  {scores[metric + '_signature']}")
            typer.echo(f"{len(pairs)} sentences in {seconds:.1f} s (beam {scores['beam']}, {translator.precision}, "
                       f"{translator.device})")
        note_unusual_input(translator)


@contextmanager
def _output_file(path: Optional[Path]) -> Iterator[Callable[[str], str]]:
    """Gives `written(line)`, which writes the line to `path` (a --output FILE, created or emptied
    at once, so a bad path fails before any work) and returns it; without a path it only returns it."""
    if path is None:
        yield lambda line: line
        return
    try:
        handle = open(path, "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise OptionError(f"--output {path}: cannot write ({exc.strerror or exc}).") from None

    def written(line: str) -> str:
        handle.write(line + "\n")
        return line

    with handle:
        yield written


@app.command("models")
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the models --model NAME finds, in search order.

    The order: the working directory, each folder of $ATTNCLI_MODELS, the user data folder, the
    shipped models (the first of a name is used)."""
    with reported_errors():
        from .model_list import find_models, models_json, models_table

        entries = find_models()
        typer.echo(models_json(entries) if as_json else models_table(entries))


@inspect_app.command("alignment")
def inspect_alignment(
    sentence: Annotated[Optional[str], typer.Argument(metavar="SENTENCE", help="Source sentence (words = whitespace tokens); default: each line of stdin.")] = None,
    model: ModelOption = "es-en",
    target: Annotated[Optional[str], typer.Option(help="Explain this translation (teacher-forced) instead of the model's own.")] = None,
    file: Annotated[Optional[Path], typer.Option(help="Align every source<TAB>target pair of this file (teacher-forced).")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table, pharaoh (i-j links) or json.")] = OutputFormat.table,
    subwords: Annotated[bool, typer.Option(help="Show the raw subword-level matrix.")] = False,
    gold: Annotated[Optional[str], typer.Option(help="Gold links ('0-0 1p2') to mark agreement in the table.")] = None,
    gold_file: Annotated[Optional[Path], typer.Option(help="Gold Pharaoh file, one line per pair of --file.")] = None,
    save: Annotated[Optional[Path], typer.Option(help="Also write the table to FILE.svg or FILE.html.")] = None,
    min_weight: Annotated[Optional[float], typer.Option(help="No link for a target word whose strongest weight is below this (default: the model's tuned value, else 0).")] = None,
    shift: Annotated[Optional[int], typer.Option(help="0: attention that predicted the word; 1: attention after reading it (default: the model's, else 0).")] = None,
    mutual: Annotated[Optional[bool], typer.Option("--mutual/--no-mutual", help="Keep a link only if it is also the strongest from the source word's side (default: the model's, else no).")] = None,
    beam: Annotated[Optional[int], typer.Option(help="Beam size for the model's own translation.")] = None,
    length_penalty: Annotated[Optional[float], typer.Option(help="Length normalisation exponent for the model's own translation. Default: the model's.")] = None,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = "auto",
    batch_size: Annotated[int, typer.Option(help="Pairs (or stdin lines) per batch with --file (or stdin).")] = 32,
) -> None:
    """Show which source words each target word attended to.

    For SENTENCE, each pair of --file, or else each line of stdin (one sentence a line, with the
    model's own translation; a blank line stays blank).
    """
    with reported_errors():
        from .alignment import LinkSettings, align_file, check_gold_links, parse_pharaoh
        from .render import check_picture_path

        LinkSettings.check_options(min_weight, shift)
        _check_alignment_inputs(sentence, file, target, gold, gold_file, save)
        gold_links = parse_pharaoh(gold, "--gold: ") if gold else None
        if save is not None:
            check_picture_path(save)
        if sentence is None and file is None:
            _align_stdin(model, (precision.value, device), beam, length_penalty, batch_size, (min_weight, mutual, shift),
                         output_format, subwords)
            return
        from .translator import Translator

        translator = Translator.load(model, precision=precision.value, sentences=None if file is not None else 1,
                                     device=device)
        # what the model's links were tuned with, if anything, unless options say otherwise
        settings = translator.link_defaults.overridden(min_weight, mutual, shift)
        if file is not None:
            pairs = align_file(translator, file, gold_file, settings.attention_shift, batch_size)
            with line_progress("aligning", lambda: _count_pairs(file)) as counted:
                for alignment, gold_file_links in counted(pairs):
                    _show_alignment(alignment, output_format, subwords, settings, gold_file_links)
        else:
            alignment = translator.align(sentence, target, beam, settings.attention_shift, length_penalty)
            if gold_links is not None:
                check_gold_links(gold_links, alignment, "--gold: ")
            _show_alignment(alignment, output_format, subwords, settings, gold_links, save)
        note_unusual_input(translator)


def _check_alignment_inputs(sentence: Optional[str], file: Optional[Path], target: Optional[str], gold: Optional[str],
                            gold_file: Optional[Path], save: Optional[Path]) -> None:
    """Refuse options that do not go with what is aligned: a SENTENCE, --file PAIRS, or else stdin."""
    if sentence is not None and file is not None:
        raise OptionError("give a SENTENCE or --file PAIRS.tsv, not both.")
    for option, value in (("--target", target), ("--gold", gold), ("--save", save)):
        if value is not None and sentence is None:
            source = "--file" if file is not None else "sentences from stdin"
            raise OptionError(f"{option} goes with one SENTENCE; it cannot be used with {source}.")
    if gold_file is not None and file is None:
        raise OptionError("--gold-file goes with --file (one gold line per pair of the file).")


def _align_stdin(model: str, runtime: tuple[str, str], beam: Optional[int], length_penalty: Optional[float],
                 batch_size: int, link_options: tuple, output_format: OutputFormat, subwords: bool) -> None:
    """inspect alignment of each stdin line with the model's own translation; typed at a terminal,
    each line as soon as it is typed (after a prompt on stderr). `runtime`: (--precision, --device);
    `link_options`: (--min-weight, --mutual, --shift)."""
    precision, device = runtime
    from .alignment import align_lines
    from .translator import Translator

    typed = sys.stdin.isatty()
    progress = nullcontext(iter) if typed else line_progress("aligning", _stdin_line_count)
    if typed:
        translator = Translator.load(model, precision=precision, sentences=1, device=device)
    else:
        translator, lines = Translator.for_lines(_stdin_text_lines(), model, precision=precision, device=device)
    settings = translator.link_defaults.overridden(*link_options)

    def aligned(lines: Iterator[str], size: int):
        return align_lines(translator, lines, "stdin", beam, length_penalty, settings.attention_shift, size)

    alignments = _interactively(lambda typed_lines: aligned(typed_lines, 1), "align") if typed else aligned(lines, batch_size)
    with progress as counted:
        for alignment in counted(alignments):
            _show_alignment(alignment, output_format, subwords, settings, None)
            if typed:                            # the line's notes before the next prompt
                sys.stdout.flush()
                note_unusual_input(translator)
    note_unusual_input(translator)


def _count_pairs(path: Path) -> Optional[int]:
    """The pairs of a --file (its lines that are not blank), for the progress bar; None if unreadable."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


def _show_alignment(alignment, output_format: OutputFormat, subwords: bool, settings, gold_links,
                    save: Optional[Path] = None) -> None:
    """Write one alignment to stdout in `output_format` (and its table to `save`); None, the
    alignment of a blank line, is a blank line."""
    from .render import alignment_text, print_alignment_table, save_alignment_picture

    if alignment is None:
        typer.echo("")
        return
    links = alignment.links(settings.min_weight, settings.mutual)
    if output_format is OutputFormat.table:
        print_alignment_table(stdout_console(), alignment, subwords, links, gold_links)
    else:
        typer.echo(alignment_text(alignment, output_format.value, links))
    if save is not None:
        save_alignment_picture(alignment, subwords, links, gold_links, save)
        sys.stderr.write(f"attncli: saved {save}\n")


class StepFormat(str, Enum):
    table = "table"
    json = "json"


@inspect_app.command("step")
def inspect_step(
    sentence: Annotated[str, typer.Argument(metavar="SENTENCE", help="Source sentence.")],
    word: Annotated[Optional[int], typer.Option(help="Show the step that predicts this target word (0-based; its first piece).")] = None,
    piece: Annotated[Optional[int], typer.Option(help="Show the step that predicts this target piece (0-based; the number of pieces is the final </s>).")] = None,
    target: Annotated[Optional[str], typer.Option(help="Read this translation (teacher-forced) instead of the model's own.")] = None,
    model: ModelOption = "es-en",
    beam: Annotated[Optional[int], typer.Option(help="Beam size for the model's own translation.")] = None,
    output_format: Annotated[StepFormat, typer.Option("--format", help="table, or json (every vector in full).")] = StepFormat.table,
    save: Annotated[Optional[Path], typer.Option(help="Also write FILE.html, a page with every step of the translation: click a piece to see its step. It opens at --word/--piece, which --save makes optional (default: --piece 0).")] = None,
) -> None:
    """Show one decoder step of Luong attention, with its numbers.

    h_t, the scores, the softmax, the context c_t, [c_t; h_t], h̃_t (and l_t of a lexical model)
    and the most probable next pieces; --save FILE.html: every step, as a page to open in a browser."""
    with reported_errors():
        from .attention_steps import check_step_options, explain_step, explain_steps, step_index
        from .pages import check_page_path
        from .step_view import attention_step_text, print_attention_step

        if save is not None:
            check_page_path(save)
            piece = 0 if word is None and piece is None else piece
        check_step_options(sentence, word, piece, target)
        from .translator import Translator

        translator = Translator.load(model, sentences=1)
        if save is None:
            step = explain_step(translator, sentence, target, word=word, piece=piece, beam_size=beam)
        else:                                   # every step for the page, from one pass
            steps = explain_steps(translator, sentence, target, beam_size=beam)
            step = steps[step_index(steps[0], word, piece)]
        if output_format is StepFormat.json:
            typer.echo(attention_step_text(step))
        else:
            print_attention_step(stdout_console(), step)
        if save is not None:
            from .pages import save_step_page

            save_step_page(steps, step.piece_index, Path(model).name or model, sentence, save)
            sys.stderr.write(f"attncli: saved {save}\n")
        note_unusual_input(translator)


@inspect_app.command("aer")
def inspect_aer(
    gold: Annotated[Path, typer.Argument(metavar="GOLD", help="Gold Pharaoh file: i-j sure, ipj possible links.")],
    hypothesis: Annotated[Path, typer.Argument(metavar="HYPOTHESIS", help="Predicted Pharaoh file, one line per gold line.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score word alignments against gold: AER, precision, recall."""
    with reported_errors():
        from .alignment import score_alignment_files
        from .render import aer_json, aer_text

        score = score_alignment_files(gold, hypothesis)
        typer.echo(aer_json(score) if as_json else aer_text(score))


class HistoryAxis(str, Enum):
    updates = "updates"
    minutes = "minutes"


@inspect_app.command("history")
def inspect_history(
    model_name: Annotated[Optional[str], typer.Argument(metavar="MODEL", help="Model folder, or a model name (as --model); default: es-en.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="The model, as an option (as in the other inspect commands).")] = None,
    x: Annotated[HistoryAxis, typer.Option("--x", help="The curves' x axis: updates or minutes.")] = HistoryAxis.updates,
    at: Annotated[Optional[int], typer.Option(help="Show the watched sentences at the validation after this update only (default: the first, middle and last).")] = None,
    save: Annotated[Optional[Path], typer.Option(help="Also draw the curves into FILE.svg or FILE.png; FILE.html is a page with the curves and the watched sentences' time-lapse, a slider through the validations.")] = None,
    output_format: Annotated[StepFormat, typer.Option("--format", help="table (curves, validations, watched sentences), or json.")] = StepFormat.table,
) -> None:
    """Show how a model trained: its curves and watched attention.

    Dev BLEU, chrF and loss at each validation, as curves and as a table with the learning rate
    (where the run recorded it), then the attention of the sentences watched in training (train
    --watch) as it formed, with AER per validation where gold links were given. Reads config.json only."""
    with reported_errors():
        from .history import chosen_validations, read_history
        from .modelfile import resolve_model_path
        from .plots import check_save_path

        if model_name is not None and model is not None and model_name != model:
            raise OptionError(f"give the model once: MODEL ({model_name}) or --model ({model}).")
        if save is not None:
            check_save_path(save)
        history = read_history(resolve_model_path(model_name or model or "es-en"))
        chosen = chosen_validations(history, at) if history.watched or at is not None else []
        if output_format is StepFormat.json:
            from .history_view import history_json

            typer.echo(json.dumps(history_json(history, chosen), ensure_ascii=False))
        else:
            _print_history(history, chosen, x is HistoryAxis.minutes)
        if save is not None:
            from .pages import PAGE_SUFFIX, save_history_page
            from .plots import save_curves

            draw = save_history_page if save.suffix.lower() == PAGE_SUFFIX else save_curves
            draw(history, save, x is HistoryAxis.minutes)
            sys.stderr.write(f"attncli: saved {save}\n")


def _print_history(history, chosen: list[int], minutes: bool) -> None:
    """The terminal view of inspect history: summary, curves, validations, watched sentences."""
    from .plots import curves_text
    from .history_view import NOTHING_WATCHED, history_summary, print_time_lapse, validations_notes, validations_table

    console = stdout_console()
    terminal = console.is_terminal
    console.print(history_summary(history))
    console.out(curves_text(history, console.width if terminal else 80, minutes, color=terminal), highlight=False)
    scores = [history.aer(index) for index in range(len(history.records))]
    console.print(validations_table(history, scores))
    for note in validations_notes(history, any(score is not None for score in scores)):
        console.print(note)                         # wrapped at the console's width
    console.print()
    if history.watched:
        print_time_lapse(console, history, chosen)
    else:
        console.print(NOTHING_WATCHED, soft_wrap=True, highlight=False)


_COMMAND_LINE: list[str] = []     # the arguments of this run (`train --nproc` hands them to the processes)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the CLI; returns the exit status. Usage errors become one line on stderr (status 2)."""
    global _COMMAND_LINE
    _COMMAND_LINE = list(argv) if argv is not None else sys.argv[1:]
    command = typer.main.get_command(app)
    try:
        # Without standalone mode typer *returns* the status of an Exit it caught, e.g. 130 for Ctrl-C
        status = command.main(args=argv, prog_name="attncli", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("attncli: interrupted.\n")
        return 130
    except typer.TyperException as exc:   # bad command line (typer's own click)
        if type(exc).__name__ == "NoArgsIsHelpError":    # `attncli` or `attncli inspect` alone
            sys.stdout.write(exc.ctx.get_help() + "\n")
            return 0
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        sys.stderr.write(f"attncli: error: {' '.join(message.split())}\n")
        return 2
    except BrokenPipeError:
        _silence_broken_pipe()
        return 141
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    if status == 130:
        sys.stderr.write("attncli: interrupted.\n")
    if isinstance(status, int) and not isinstance(status, bool) and status:
        return status
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_broken_pipe()
        return 141
    return 0


def _silence_broken_pipe() -> None:
    """The reader went away (`| head`): point stdout at /dev/null so the exit flush is quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def entry() -> None:
    sys.exit(main())
