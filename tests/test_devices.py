"""--device and --precision: what runs where (translation, validation, watching), and the one-line refusals.

No GPU is needed: the GPU's half-precision search is torch.autocast over the same code, which is
exercised here with the CPU's bfloat16 autocast; a CUDA device that is not there is an error."""

from __future__ import annotations

import json
import math

import pytest
import torch

from attncli.batch import make_batch
from attncli.devices import resolve_device, search_autocast, search_precision, translation_device
from attncli.errors import OptionError
from attncli.scoring import length_limit
from attncli.search import search
from attncli.search_decoder import SearchDecoder
from attncli.tokenizer import BOS_ID, EOS_ID
from attncli.translator import Translator
from conftest import assert_one_line_error


def test_auto_precision_is_int8_on_the_cpu_and_gpu_precisions_are_refused_there():
    cpu = torch.device("cpu")
    assert search_precision("auto", cpu) == "int8"
    assert search_precision("float32", cpu) == "float32"
    for half in ("float16", "bfloat16"):
        with pytest.raises(OptionError, match=f"--precision {half} does not run on the CPU.*int8 or float32"):
            search_precision(half, cpu)


def test_int8_is_refused_on_a_gpu():
    with pytest.raises(OptionError, match="--precision int8 does not run on a GPU.*float32 or float16 or bfloat16"):
        search_precision("int8", torch.device("cuda"))


def test_cuda_without_a_gpu_is_a_one_line_error_in_translate_and_evaluate(run_cli, tiny_model_dir, corpus_files):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = run_cli(["translate", "--model", tiny_model_dir, "--device", "cuda", "uno dos"])
    assert_one_line_error(result, "--device cuda", "no CUDA GPU")
    result = run_cli(["evaluate", corpus_files[1], "--model", tiny_model_dir, "--device", "cuda:1"])
    assert_one_line_error(result, "--device cuda:1")
    result = run_cli(["translate", "--model", tiny_model_dir, "--device", "cpu", "--precision", "bfloat16", "uno"])
    assert_one_line_error(result, "--precision bfloat16", "CPU")


def test_evaluate_reports_the_device_and_the_precision_auto_chose(run_cli, tiny_model_dir, corpus_files):
    result = run_cli(["evaluate", corpus_files[1], "--model", tiny_model_dir, "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    assert (scores["precision"], scores["device"]) == ("int8", "cpu")


def test_explicit_cpu_device_runs_torch_and_translates_as_numpy(tiny_model_dir):
    sentences = ["uno dos", "tres cuatro cinco"]
    numpy_runtime = Translator.load(tiny_model_dir, threads=1, sentences=1)
    few_on_cpu = Translator.load(tiny_model_dir, threads=1, sentences=1, device="cpu")
    assert (numpy_runtime.runtime, few_on_cpu.runtime) == ("numpy", "numpy")   # a few sentences on the CPU: NumPy
    many = Translator.load(tiny_model_dir, threads=1, device="cpu")
    assert (many.runtime, many.device, many.precision) == ("torch", "cpu", "int8")
    assert many.translate(sentences) == numpy_runtime.translate(sentences)


def test_search_under_half_precision_autocast_keeps_float32_scores(translator):
    """The GPU's float16/bfloat16 path (autocast over the float32 search decoder) on the CPU's
    bfloat16: the decoder steps run in bfloat16, the logits and scores stay float32, and every
    hypothesis is a valid output. (Which words come out depends on the CPU's bfloat16 kernels, so
    it is not compared: no test may assume one CPU.)"""
    encoded = [translator.encode_source(s)[0] for s in ("uno dos tres", "cuatro cinco", "seis siete ocho nueve")]
    batch = make_batch(encoded)
    decoder = SearchDecoder(translator.model.decoder, "float32")
    vocab = translator.model.config.tgt_vocab_size
    with search_autocast("bfloat16", torch.device("cpu")):
        memory = decoder.prepare(translator.model.encode(batch.src_ids, batch.src_lengths))
        attentional, _ = decoder.step(torch.full((3,), BOS_ID), decoder.initial_state(memory), memory)
        assert attentional.dtype == torch.bfloat16                     # the half-precision arithmetic ran
        assert decoder.logits(attentional).dtype == torch.float32
        halved = search(translator.model, batch, 3, 1.0, decoder)
    assert len(halved) == len(encoded)
    for source, hypothesis in zip(encoded, halved):
        assert isinstance(hypothesis.score, float) and math.isfinite(hypothesis.score) and hypothesis.score <= 0.0
        assert len(hypothesis.token_ids) <= length_limit(len(source) + 1)   # source + EOS
        assert all(EOS_ID < piece < vocab for piece in hypothesis.token_ids)


def test_resolve_device_names_the_option_in_its_errors():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(OptionError, match="--device must be"):
        resolve_device("cpu:3")


def test_inspect_alignment_takes_the_device_too(run_cli, tiny_model_dir, corpus_files):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = run_cli(["inspect", "alignment", "uno dos", "--model", tiny_model_dir, "--device", "cuda"])
    assert_one_line_error(result, "--device cuda", "no CUDA GPU")
    result = run_cli(["inspect", "alignment", "--file", corpus_files[1], "--model", tiny_model_dir, "--device", "cpu",
                      "--format", "pharaoh"])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(corpus_files[1].read_text(encoding="utf-8").splitlines())


def test_validation_runs_on_the_models_device(monkeypatch, tiny_model_dir, corpus_files):
    """Dev loss and dev translations move their batches to where the model is (on a GPU the
    first validation would otherwise fail)."""
    from attncli.batch import Batch
    from attncli.modelfile import load_model
    from attncli.training_data import EncodedCorpus
    from attncli.validation import dev_scores

    loaded = load_model(tiny_model_dir)
    pairs = [line.split("\t") for line in corpus_files[1].read_text(encoding="utf-8").splitlines()][:8]
    dev = EncodedCorpus([loaded.src_tokenizer.encode(s) for s, _ in pairs], [loaded.tgt_tokenizer.encode(t) for _, t in pairs])
    moved, to = [], Batch.to
    monkeypatch.setattr(Batch, "to", lambda batch, device: moved.append(device) or to(batch, device))
    dev_scores(loaded.model, dev, [t for _, t in pairs], loaded.tgt_tokenizer, 2000)
    assert len(moved) >= 2 and set(moved) == {torch.device("cpu")}        # the loss's batches and the search's


def test_watching_during_training_leaves_the_model_on_the_runs_device(monkeypatch, corpus_files, tmp_path):
    """`train --watch` builds a translator over the training model at each validation; building
    one moves its model, so it must be built for the run's device."""
    from dataclasses import replace

    from attncli import torch_runtime
    from attncli.training import train
    from conftest import TINY

    devices, build = [], torch_runtime.TorchTranslator.__init__

    def recording(translator, loaded, precision, *device):
        devices.append(device)
        build(translator, loaded, precision, *device)

    monkeypatch.setattr(torch_runtime.TorchTranslator, "__init__", recording)
    train(corpus_files[0], corpus_files[1], tmp_path / "m", replace(TINY, epochs=1, valid_every=3, watch=("Tengo un perro.",)))
    assert devices and all(device == (torch.device("cpu"),) for device in devices)


class FakeGpu:
    """torch.cuda.get_device_properties's answer for a GPU of this compute capability."""

    def __init__(self, major: int) -> None:
        self.major = major


@pytest.mark.parametrize("major, chosen", [(7, "float16"), (8, "bfloat16"), (9, "bfloat16")])
def test_auto_takes_bfloat16_only_on_gpus_that_multiply_it_in_hardware(monkeypatch, major, chosen):
    """torch.cuda.is_bf16_supported() says yes on a T4 or V100 too, where bfloat16 is emulated."""
    from attncli.training_precision import resolve_train_precision

    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: asked.append(device) or FakeGpu(major))
    assert search_precision("auto", torch.device("cuda", 1)) == chosen
    assert resolve_train_precision("auto", torch.device("cuda", 1)) == chosen
    assert asked == [torch.device("cuda", 1)] * 2                      # the GPU asked for, not the current one


def test_auto_device_translates_int8_on_the_cpu_even_beside_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert translation_device("auto", "int8") == torch.device("cpu")
    assert translation_device("auto", "float32") == torch.device("cuda")
    assert translation_device("cpu", "auto") == torch.device("cpu")


@pytest.mark.parametrize("processes, gpus, device, local_rank, expected", [
    ("1", 0, "cpu", "0", "cpu"), ("2", 0, "cpu", "1", "cpu"),         # the CPU: every process shares it
    ("1", 2, "cuda:1", "0", "cuda:1"),                                  # one process: the GPU named
    ("1", 1, "cuda", "0", "cuda:0"),                                    # an index, as set_device and NCCL need
    ("2", 2, "cuda", "1", "cuda:1"),                                    # each process its own GPU
    ("2", 2, "cuda:0", "0", "--device cuda:0: 2 processes on this machine cannot share one GPU"),
    ("4", 2, "cuda", "0", "4 processes on this machine need a GPU each and it has 2.*--nproc")])
def test_each_process_takes_its_own_gpu_or_says_why_it_cannot(monkeypatch, processes, gpus, device, local_rank,
                                                                 expected):
    from attncli.distributed import Ranks

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert Ranks.local_device(torch.device("cuda")) == torch.device("cuda")    # without torchrun: as given
    monkeypatch.setenv("LOCAL_WORLD_SIZE", processes)
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    if not expected.startswith(("cpu", "cuda")):
        with pytest.raises(OptionError, match=expected):
            Ranks.local_device(torch.device(device))
    else:
        assert Ranks.local_device(torch.device(device)) == torch.device(expected)


def test_a_gpu_searches_in_larger_batches_unless_told(monkeypatch, tiny_model_dir):
    from attncli.config import DECODE_BATCH_TOKENS, GPU_DECODE_BATCH_TOKENS, GPU_STREAM_CHUNK_LINES, STREAM_CHUNK_LINES
    from attncli.modelfile import load_model
    from attncli.torch_runtime import TorchTranslator

    loaded = load_model(tiny_model_dir)
    monkeypatch.setattr(type(loaded.model), "to", lambda model, device: model)    # no GPU here: it stays put
    gpu = TorchTranslator(loaded, "float32", torch.device("cuda"))
    assert (gpu.decode_batch_tokens, gpu.stream_chunk_lines) == (GPU_DECODE_BATCH_TOKENS, GPU_STREAM_CHUNK_LINES)
    cpu = Translator.load(tiny_model_dir, threads=1, device="cpu")
    assert (cpu.decode_batch_tokens, cpu.stream_chunk_lines) == (DECODE_BATCH_TOKENS, STREAM_CHUNK_LINES)
    seen = []
    monkeypatch.setattr(type(cpu), "search_ids",
                        lambda self, encoded, beam, alpha, batch_tokens: seen.append(batch_tokens) or [[]] * len(encoded))
    cpu.translate(["uno dos"])
    cpu.translate(["uno dos"], batch_tokens=123)
    gpu.translate(["uno dos"])
    assert seen == [DECODE_BATCH_TOKENS, 123, GPU_DECODE_BATCH_TOKENS]
    chunks = []
    monkeypatch.setattr(type(cpu), "_translate_chunk", lambda self, lines, *rest: chunks.append(len(lines)) or iter(()))
    for translator in (cpu, gpu):
        list(translator.translate_stream(["uno"] * (GPU_STREAM_CHUNK_LINES + 1)))
    assert chunks == [STREAM_CHUNK_LINES] * (GPU_STREAM_CHUNK_LINES // STREAM_CHUNK_LINES) + [1, GPU_STREAM_CHUNK_LINES, 1]
