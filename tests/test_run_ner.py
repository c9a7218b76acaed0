"""run_ner.py end to end at tiny scale: every input format through records, a few training steps
with each head, evaluation (equal to seqeval on the written predictions), prediction files, resume
after kill -9, export, and bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run_ner
from src.sample_data import fetch
from tools import create_ner_data

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "ner"
SEQ = 24
TINY = ["--model", "bert_tiny", f"--model.seq_length={SEQ}", f"--model.max_position_embeddings={SEQ}",
        "--progress=false", "--log_every=1", "--optimizer.adamw.learning_rate=1e-3", "--warmup_proportion=0"]
FORMATS = {  # name: (task, fixture dir, vocab, extra create_ner_data options)
    "conll2003": ("conll", "conll2003", "vocab_en", ["--tag_column", "3", "--source_scheme", "IOB1"]),
    "bio_tab": ("conll", "bio_tab", "vocab_en", []),
    "msra": ("msra", "msra", "vocab_zh", []),
    "zoo_bmes": ("conll", "zoo_bmes", "vocab_zh", ["--scheme", "IOBES"]),
    "cluener": ("cluener", "cluener", "vocab_zh", []),
    "peoples_daily": ("peoples_daily", "peoples_daily", "vocab_zh", []),
}


def make_records(name: str, out: Path, seq: int = SEQ, fmt: str = "mindrecord") -> Path:
    task, folder, vocab, extra = FORMATS[name]
    argv = ["--task", task, "--data_dir", str(FIXTURES / folder), "--vocab_file", str(fetch(vocab)),
            "--max_seq_length", str(seq), "--output_dir", str(out), "--progress", "false", "--format", fmt, *extra]
    assert create_ner_data.main(argv) == 0
    return out


def vocab_size(name: str) -> int:
    return 30522 if FORMATS[name][2] == "vocab_en" else 21128


def read_conll_predictions(path: Path) -> tuple[list, list]:
    gold, pred = [[]], [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            gold.append([])
            pred.append([])
            continue
        _, g, p = line.split(" ")
        gold[-1].append(g)
        pred[-1].append(p)
    return [g for g in gold if g], [p for p in pred if p]


@pytest.mark.parametrize("use_crf", [True, False], ids=["crf", "softmax"])
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_trains_evaluates_and_predicts(name, use_crf, tmp_path):
    from seqeval.metrics import f1_score

    records = make_records(name, tmp_path / "records")
    info = json.loads((records / "dataset.json").read_text())
    unlabelled = [s for s, v in info["splits"].items() if not v["has_labels"]]
    out = tmp_path / "out"
    code = run_ner.main([*TINY, f"--model.vocab_size={vocab_size(name)}", f"--data_dir={records}",
                         f"--output_dir={out}", "--batch_size=2", "--eval_batch_size=3", "--train_steps=3",
                         "--eval_every=3", f"--use_crf={str(use_crf).lower()}", f"--do_predict={bool(unlabelled)}"])
    assert code == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["train_steps"] == 3 and results["num_labels"] == len(info["labels"])
    eval_splits = [s for s, v in info["splits"].items() if v["has_labels"] and s != "train"]
    assert eval_splits
    for split in eval_splits:
        assert results[f"{split}_examples"] == info["splits"][split]["sentences"]
        gold, pred = read_conll_predictions(out / f"predictions_{split}.txt")
        index = [json.loads(line) for line in (records / info["splits"][split]["sentences_file"]).open()]
        assert gold == [e["tags"] for e in index]  # every gold tag of every sentence, windows merged
        assert results[f"{split}_f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
        assert set(results) >= {f"{split}_precision", f"{split}_recall", f"{split}_token_accuracy"}
    for split in unlabelled:
        lines = (out / f"predictions_{split}.txt").read_text(encoding="utf-8").split("\n\n")
        assert len([b for b in lines if b.strip()]) == info["splits"][split]["sentences"]
    if name == "cluener":
        rows = [json.loads(line) for line in (out / "cluener_predict_test.json").read_text().splitlines()]
        assert [r["id"] for r in rows] == [0, 1] and all(isinstance(r["label"], dict) for r in rows)
        assert "dev_cluener_macro_f1" in results


def test_tfrecord_records_give_the_same_predictions(tmp_path):
    """The same records as TFRecord (+ the zoo's schema JSON): training and scoring as from MindRecord."""
    scores = {}
    for fmt in ("mindrecord", "tfrecord"):
        records = make_records("msra", tmp_path / f"records-{fmt}", fmt=fmt)
        assert (records / f"train.{fmt}").exists()
        out = tmp_path / f"out-{fmt}"
        assert run_ner.main([*TINY, "--model.vocab_size=21128", f"--data_dir={records}", f"--output_dir={out}",
                             "--batch_size=2", "--train_steps=4", "--eval_batch_size=2"]) == 0
        scores[fmt] = json.loads((out / "all_results.json").read_text())
    assert scores["tfrecord"]["test_examples"] == scores["mindrecord"]["test_examples"] == 3
    assert scores["tfrecord"]["test_f1"] == pytest.approx(scores["mindrecord"]["test_f1"])


def test_learns_the_tags_and_keeps_the_best(tmp_path):
    """A tiny model must learn the MSRA fixture's own tags (train on train, evaluate on train)."""
    records = make_records("msra", tmp_path / "records")
    out = tmp_path / "out"
    code = run_ner.main([*TINY, "--model.vocab_size=21128", f"--data_dir={records}", f"--output_dir={out}",
                         "--batch_size=2", "--train_steps=60", "--eval_every=20", "--eval_splits=train",
                         "--optimizer.adamw.learning_rate=3e-3"])
    assert code == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["train_f1"] == 1.0 and results["train_token_accuracy"] == 1.0


def _resume_args(records: Path, out: Path) -> list[str]:
    # dropout on: its random state is part of a checkpoint
    return [*TINY, "--model.vocab_size=21128", "--model.hidden_dropout_prob=0.1",
            "--model.attention_probs_dropout_prob=0.1", f"--data_dir={records}", f"--output_dir={out}",
            "--batch_size=2", "--train_steps=40", "--eval_every=8",
            "--save_checkpoint_steps=4", "--keep_checkpoint_max=20"]


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, caplog):
    """kill -9 in the middle, run again: the losses, the best checkpoint, the scores and the
    predictions equal an uninterrupted run's (6 sentences, batch 2: the run crosses 13 epochs)."""
    records = make_records("msra", tmp_path / "records")
    whole = tmp_path / "whole"
    assert run_ner.main(_resume_args(records, whole)) == 0
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(ROOT / "run_ner.py"), *_resume_args(records, killed)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, GLOG_v="3"))
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "ner-00000012.ckpt").exists():
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(int(p.stem.split("-")[1]) for p in (killed / "checkpoints").glob("ner-*.ckpt"))
    assert 12 <= saved[-1] < 40, saved
    with caplog.at_level("INFO"):
        assert run_ner.main(_resume_args(records, killed)) == 0
    assert any(f"at step {saved[-1]}" in r.message for r in caplog.records if "resumed from" in r.message)
    a = json.loads((whole / "all_results.json").read_text())
    b = json.loads((killed / "all_results.json").read_text())
    for key in ("test_f1", "test_precision", "test_recall", "test_token_accuracy", "best_step"):
        assert b[key] == a[key], key
    assert (whole / "predictions_test.txt").read_text() == (killed / "predictions_test.txt").read_text()
    losses = {}
    for run in (whole, killed):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses[run.name] = {r["step"]: r["loss"] for r in rows if r["event"] == "train"}
    assert sorted(losses["killed"]) == list(range(1, 41))
    for step in range(saved[-1] + 1, 41):
        assert losses["killed"][step] == pytest.approx(losses["whole"][step], abs=1e-6), step


def test_export_returns_decoded_tags(tmp_path):
    import mindspore as ms
    import numpy as np

    from src.data.records import read_batches

    records = make_records("msra", tmp_path / "records")
    out = tmp_path / "out"
    assert run_ner.main([*TINY, "--model.vocab_size=21128", f"--data_dir={records}", f"--output_dir={out}",
                         "--batch_size=2", "--train_steps=2", "--eval_batch_size=3"]) == 0
    sys.path.insert(0, str(ROOT))
    import export

    mindir = tmp_path / "tagger.mindir"
    assert export.main(["--run_config", str(out / "config.yaml"), "--checkpoint", str(out / "best_model.ckpt"),
                        "--batch_size", "3", "--output", str(mindir)]) == 0
    graph = ms.nn.GraphCell(ms.load(str(mindir)))
    batch = next(read_batches(records / "test.mindrecord", batch_size=3))
    inputs = [ms.Tensor(batch[k].astype(np.int32)) for k in ("input_ids", "input_mask", "segment_ids", "label_mask")]
    tags = graph(*inputs).asnumpy()
    gold, pred = read_conll_predictions(out / "predictions_test.txt")
    labels = json.loads((records / "dataset.json").read_text())["labels"]
    for row in range(3):
        assert [labels[i] for i in tags[row][batch["label_mask"][row] == 1]] == pred[row]


BAD_RUNS = {
    "vocab": (["--model.vocab_size=30522"], "vocab_size 21128 in"),
    "seq_length": ([f"--model.seq_length={SEQ + 8}", f"--model.max_position_embeddings={SEQ + 8}"],
                   f"max_seq_length {SEQ} in"),
    "not ner records": ([], "not NER records"),
}


@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_records_that_disagree_with_the_model_are_a_clear_error(case, tmp_path, capsys):
    records = make_records("msra", tmp_path / "records")
    if case == "not ner records":
        info = json.loads((records / "dataset.json").read_text())
        info["task"] = "sst2"
        (records / "dataset.json").write_text(json.dumps(info))
    extra, message = BAD_RUNS[case]
    code = run_ner.main([*TINY, "--model.vocab_size=21128", *extra, f"--data_dir={records}",
                         f"--output_dir={tmp_path / 'out'}", "--train_steps=1"])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_help_opens_with_the_commands(capsys):
    with pytest.raises(SystemExit):
        run_ner.main(["--help"])
    text = capsys.readouterr().out
    assert "python tools/create_ner_data.py --task msra" in text and "python run_ner.py --config" in text
