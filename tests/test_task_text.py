"""tools/task_text.py: the texts of a classification split, one example per line, labels never written."""
from __future__ import annotations

from pathlib import Path

from src.data.classifier_data import get_processor
from tools import task_text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "classifier"


def test_example_line():
    assert task_text.example_line("  a\tb \n c ", None) == "a b c"
    assert task_text.example_line("one.", "two.") == "one. two."
    assert task_text.example_line("one.", "  ") == "one."
    assert task_text.example_line(" ", None) == ""


def test_pairs_without_labels(tmp_path, capsys):
    out = tmp_path / "sub" / "train.txt"
    code = task_text.main(["--task", "jsonl", "--data_dir", str(FIXTURES / "generic"), "--text_a", "premise",
                           "--text_b", "hypothesis", "--label", "score", "--output", str(out)])
    assert code == 0
    examples = get_processor("jsonl", FIXTURES / "generic", text_a="premise", text_b="hypothesis",
                             label="score").get_examples("train")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == [f"{e.text_a} {e.text_b}" for e in examples]
    assert not any(str(e.label) in line.split() for e in examples for line in lines)
    assert f"jsonl train: {len(examples)} texts" in capsys.readouterr().out


def test_glue_split(tmp_path):
    out = tmp_path / "dev.txt"
    assert task_text.main(["--task", "SST-2", "--data_dir", str(FIXTURES / "SST-2"), "--split", "dev",
                           "--output", str(out)]) == 0
    dev = get_processor("sst2", FIXTURES / "SST-2").get_examples("dev")
    assert out.read_text(encoding="utf-8").splitlines() == [" ".join(e.text_a.split()) for e in dev]


def test_errors_leave_nothing(tmp_path, capsys):
    out = tmp_path / "x.txt"
    assert task_text.main(["--task", "rte", "--data_dir", str(FIXTURES / "RTE"), "--split", "nope",
                           "--output", str(out)]) == 1
    assert "task rte has no split 'nope'" in capsys.readouterr().err
    assert task_text.main(["--task", "tsv", "--data_dir", str(FIXTURES / "generic"), "--header", "false",
                           "--text_a", "7", "--label", "0", "--output", str(out)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []
