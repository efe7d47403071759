"""Guided alignment: guide attention from word links, and training that makes attention follow it."""

import random

import torch

from attncli.alignment import guide_attention, parse_pharaoh
from attncli.config import TrainConfig
from attncli.training import train
from attncli.translator import Translator


def test_guide_spreads_over_pieces_of_linked_words():
    # source words: 0 = pieces 0,1 ; 1 = piece 2.  target words: 0 = piece 0 ; 1 = pieces 1,2 ; 2 = piece 3
    guide = guide_attention({(0, 0), (1, 0), (1, 1)}, [0, 0, 1], [0, 1, 1, 2])
    expected = torch.tensor([[1 / 3, 1 / 3, 1 / 3],
                             [0.0, 0.0, 1.0],
                             [0.0, 0.0, 1.0],
                             [0.0, 0.0, 0.0]])        # unlinked target word: no guide
    assert torch.allclose(guide, expected)
    assert guide_attention(set(), [0], [0]) is None


def test_guided_training_makes_attention_follow_the_guide(tmp_path):
    rng = random.Random(0)
    lines, guides = [], []
    for _ in range(400):
        n = rng.randint(3, 6)
        words = [rng.randrange(12) for _ in range(n)]
        source = " ".join(f"s{w}" for w in words)
        target = " ".join(f"t{w}" for w in reversed(words))          # a reversal task
        lines.append(f"{source}\t{target}")
        guides.append(" ".join(f"{i}-{n - 1 - i}" for i in range(n)))
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    (tmp_path / "train.align").write_text("\n".join(guides) + "\n")
    config = TrainConfig(vocab_size=40, embed_size=32, hidden_size=32, dropout=0.0, batch_tokens=800, epochs=12,
                         warmup_steps=5, learning_rate=0.01, patience=20, threads=1, seed=1, guide_weight=1.0,
                         label_smoothing=0.0)
    train(tmp_path / "train.tsv", None, tmp_path / "model", config, guide_path=tmp_path / "train.align")
    translator = Translator.load(tmp_path / "model", threads=1)
    sources = [line.split("\t")[0] for line in lines[:40]]
    targets = [line.split("\t")[1] for line in lines[:40]]
    agreed = total = 0
    for alignment, guide in zip(translator.align_batch(sources, targets), guides[:40]):
        gold = parse_pharaoh(guide)[0]
        agreed += len(set(alignment.links()) & gold)
        total += len(gold)
    assert agreed / total > 0.9
