"""What `inspect` writes, from the library: render.py's text formats, pictures and AER lines, and
alignment.py's file aligner and AER scorer, on hand-made alignments (no model)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console

from attncli.alignment import AlignmentScore, align_file, score_alignment_files, word_alignment
from attncli.errors import CorpusError, OptionError
from attncli.render import (aer_json, aer_text, alignment_json, alignment_text, check_picture_path,
                            print_alignment_table, save_alignment_picture)

# "a b" -> "x y": x attends a (0.7), y attends b (0.6); the last row is the EOS prediction.
WEIGHTS = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]], np.float32)


def two_words(score: float = -1.25):
    return word_alignment(["a", "b"], ["x", "y"], ["▁a", "▁b"], ["▁x", "▁y"], [0, 1], [0, 1], WEIGHTS, score)


def test_pharaoh_and_json_lines():
    alignment = two_words()
    links = alignment.links()
    assert links == [(0, 0), (1, 1)]
    assert alignment_text(alignment, "pharaoh", links) == "0-0 1-1"
    assert alignment_text(alignment, "pharaoh", []) == ""
    line = alignment_text(alignment, "json", links)
    assert "\n" not in line
    data = json.loads(line)
    assert data == alignment_json(alignment, links)
    assert data["links"] == [[0, 0], [1, 1]] and data["log_probability"] == -1.25
    assert data["word_weights"] == [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]]          # rounded to 6 places
    assert data["piece_weights"][2] == [0.1, 0.1, 0.8]
    assert data["src_words"] == ["a", "b"] and data["tgt_pieces"] == ["▁x", "▁y"]
    with pytest.raises(ValueError, match="table"):
        alignment_text(alignment, "table", links)


def test_json_keeps_non_ascii_as_is():
    alignment = word_alignment(["ñu"], ["gnu"], ["▁ñu"], ["▁gnu"], [0], [0], WEIGHTS[:2, 1:], 0.0)
    assert '"ñu"' in alignment_text(alignment, "json", alignment.links())


def test_terminal_view_is_sentence_table_legend():
    alignment = two_words()
    console = Console(file=io.StringIO(), width=80, color_system=None)
    print_alignment_table(console, alignment, False, alignment.links(), ({(0, 0)}, {(0, 0)}))
    lines = console.file.getvalue().splitlines()
    assert lines[0] == "x y"
    assert lines[1].startswith("┏") and lines[-4].startswith("└")
    assert lines[-3].startswith("Cells: attention in %") and "✓ link in gold" in lines[-1]   # the legend's 3 lines
    assert "70✓" in console.file.getvalue() and "60✗" in console.file.getvalue()


@pytest.mark.parametrize("suffix,sign", [(".svg", "<svg"), (".HTML", "<html")])
def test_pictures(tmp_path, suffix, sign):
    alignment = two_words()
    path = tmp_path / f"table{suffix}"
    save_alignment_picture(alignment, False, alignment.links(), None, path)
    text = path.read_text(encoding="utf-8")
    assert sign in text.lower()
    assert "attention" in text                          # the legend is in the picture


def test_picture_errors_name_the_option(tmp_path):
    with pytest.raises(OptionError, match=r"^--save .*x\.png: the file name must end in \.svg or \.html\.$"):
        check_picture_path(tmp_path / "x.png")
    alignment = two_words()
    with pytest.raises(OptionError, match="cannot write"):
        save_alignment_picture(alignment, False, alignment.links(), None, tmp_path / "missing" / "x.svg")


def test_aer_lines():
    score = AlignmentScore(0.125, 0.9, 0.8125, predicted=10, sure=8, possible=12, sentences=3)
    assert aer_text(score) == ("AER 0.1250  precision 0.9000  recall 0.8125  "
                               "(3 sentences, 10 links; gold 8 sure, 12 possible)")
    assert json.loads(aer_json(score)) == {"aer": 0.125, "precision": 0.9, "recall": 0.8125, "links": 10,
                                           "sure": 8, "possible": 12, "sentences": 3}


class FakeTranslator:
    """align_batch on whitespace words, with the same two-word attention for every pair."""

    def __init__(self):
        self.batches = []

    def align_batch(self, sources, targets, attention_shift=0, normalize=True):
        assert not normalize            # a pairs file is read in the model's own tokenization
        self.batches.append((len(sources), attention_shift))
        return [word_alignment(s.split(), t.split(), ["▁a", "▁b"], ["▁x", "▁y"], [0, 1], [0, 1], WEIGHTS, -1.0)
                for s, t in zip(sources, targets)]


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"a{n} b\tx y{n}\n" for n in range(5)), encoding="utf-8")
    return path


def test_align_file_streams_in_batches_with_gold(pairs_file, tmp_path):
    gold = tmp_path / "gold.align"
    gold.write_text("0-0\n0-0 1p1\n\n1-1\n0-1\n", encoding="utf-8")
    translator = FakeTranslator()
    results = list(align_file(translator, pairs_file, gold, attention_shift=1, batch_size=2))
    assert translator.batches == [(2, 1), (2, 1), (1, 1)]
    assert [alignment.src_words[0] for alignment, _ in results] == ["a0", "a1", "a2", "a3", "a4"]
    assert [links for _, links in results] == [({(0, 0)}, {(0, 0)}), ({(0, 0)}, {(0, 0), (1, 1)}), (set(), set()),
                                               ({(1, 1)}, {(1, 1)}), ({(0, 1)}, {(0, 1)})]
    assert [links for _, links in align_file(FakeTranslator(), pairs_file)] == [None] * 5


def test_align_file_errors(pairs_file, tmp_path):
    short = tmp_path / "short.align"
    short.write_text("0-0\n0-0\n", encoding="utf-8")
    aligned = align_file(FakeTranslator(), pairs_file, short, batch_size=4)
    with pytest.raises(CorpusError, match=r"short\.align: has fewer lines than .*pairs\.tsv\."):
        list(aligned)
    with pytest.raises(OptionError, match=r"^--batch-size must be at least 1, got 0\.$"):
        list(align_file(FakeTranslator(), pairs_file, batch_size=0))
    latin1 = tmp_path / "latin1.align"
    latin1.write_bytes(b"0-0\n0-0 \xe9\n")
    with pytest.raises(CorpusError, match=r"latin1\.align:2: not UTF-8"):
        list(align_file(FakeTranslator(), pairs_file, latin1))
    bad = tmp_path / "bad.align"
    bad.write_text("0-0\nzero-one\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.align:2: expected links"):
        list(align_file(FakeTranslator(), pairs_file, bad))


def test_score_alignment_files(tmp_path):
    gold, hypothesis = tmp_path / "gold.align", tmp_path / "hyp.align"
    gold.write_text("0-0 1p1\n0-0\n", encoding="utf-8")
    hypothesis.write_text("0-0 1-1\n0-1\n", encoding="utf-8")
    score = score_alignment_files(gold, hypothesis)
    # A = {00, 11 | 01}, S = {00 | 00}, P = S + {11}: |A∩S| = 1, |A∩P| = 2, |A| = 3, |S| = 2
    assert (score.precision, score.recall) == (pytest.approx(2 / 3), pytest.approx(1 / 2))
    assert score.aer == pytest.approx(1 - 3 / 5) and score.sentences == 2
    hypothesis.write_text("0-0\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"hyp\.align has 1 lines but .*gold\.align has 2\."):
        score_alignment_files(gold, hypothesis)
