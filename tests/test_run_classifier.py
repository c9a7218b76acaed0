"""run_classifier.py end to end at tiny scale: every GLUE/CLUE fixture through records, a few
training steps and evaluation with the task's metric; outputs, resume, prediction files, export
of the result, and bad input.

A slow test fine-tunes the real MiniLM checkpoint on the real rt-polarity sentences.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

import run_classifier
from src.data.classifier_data import get_processor
from src.sample_data import fetch
from tools import create_classifier_data

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "classifier"
TASK_DIRS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
             "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "tnews": "TNEWS", "iflytek": "IFLYTEK", "afqmc": "AFQMC",
             "ocnli": "OCNLI"}
CHINESE = {"tnews", "iflytek", "afqmc", "ocnli"}
SEQ = 24
TINY = ["--model", "bert_tiny", f"--model.seq_length={SEQ}", f"--model.max_position_embeddings={SEQ}",
        "--progress=false", "--log_every=1", "--optimizer.adamw.learning_rate=1e-3"]


def vocab(task: str) -> Path:
    return fetch("vocab_zh" if task in CHINESE else "vocab_en")


def make_records(task: str, out: Path, seq: int = SEQ) -> Path:
    argv = ["--task", task, "--data_dir", str(FIXTURES / TASK_DIRS[task]), "--vocab_file", str(vocab(task)),
            "--max_seq_length", str(seq), "--output_dir", str(out), "--progress", "false"]
    assert create_classifier_data.main(argv) == 0
    return out


def vocab_size(task: str) -> int:
    return 21128 if task in CHINESE else 30522


@pytest.fixture(autouse=True)
def graph_mode():
    previous = ms.get_context("mode")
    yield
    ms.set_context(mode=previous)


@pytest.mark.parametrize("task", sorted(TASK_DIRS))
def test_every_fixture_trains_and_evaluates_with_its_metric(task, tmp_path):
    records = make_records(task, tmp_path / "records")
    processor = get_processor(task, FIXTURES / TASK_DIRS[task])
    out = tmp_path / "out"
    code = run_classifier.main([*TINY, f"--model.vocab_size={vocab_size(task)}", f"--data_dir={records}",
                                f"--output_dir={out}", "--batch_size=2", "--eval_batch_size=4", "--train_steps=3",
                                "--eval_every=3", "--do_predict=true"])
    assert code == 0
    results = json.loads((out / "all_results.json").read_text())
    info = json.loads((records / "dataset.json").read_text())
    eval_splits = [s for s, v in info["splits"].items() if v["has_labels"] and s != "train"]
    assert eval_splits == (["dev_matched", "dev_mismatched"] if task == "mnli" else ["dev"])
    assert results["train_steps"] == 3
    for split in eval_splits:
        assert results[f"{split}_examples"] == info["splits"][split]["examples"]  # the padded last batch is scored
        for metric in processor.metrics:
            assert f"{split}_{metric}" in results, (task, metric)
        # the predictions of the best weights, one row per example, labels by name
        rows = (out / f"predictions_{split}.tsv").read_text(encoding="utf-8").splitlines()
        assert rows[0] == "id\tprediction" and len(rows) - 1 == info["splits"][split]["examples"]
    test_splits = ["test_matched", "test_mismatched"] if task == "mnli" else ["test"]
    for split in test_splits:
        rows = (out / f"predictions_{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        ids = (records / f"{split}_ids.txt").read_text(encoding="utf-8").splitlines()
        assert [r.split("\t")[0] for r in rows] == ids
        if processor.is_regression:
            [float(r.split("\t")[1]) for r in rows]
        else:
            assert {r.split("\t")[1] for r in rows} <= set(processor.labels)
    expected_metrics = {"cola": {"mcc"}, "stsb": {"pearson", "spearman"}, "mrpc": {"f1", "accuracy"},
                        "qqp": {"f1", "accuracy"}}.get(task, {"accuracy"})
    assert expected_metrics <= set(processor.metrics)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["event"] == "train"] == [1, 2, 3]
    assert (out / "best_model.ckpt").exists() and (out / "config.yaml").exists() and (out / "loss_curve.png").exists()


def test_learns_a_separable_task_and_keeps_the_best(tmp_path):
    """Generic CSV whose label is given away by one word: a tiny model must reach accuracy 1."""
    rng = np.random.default_rng(0)
    words = ["river", "stone", "cloud", "paper", "green", "music", "table", "light"]
    lines = ["text,label"]
    for i in range(160):
        label = i % 2
        body = " ".join(rng.choice(words, 5))
        lines.append(f"{'good' if label else 'bad'} {body},{'pos' if label else 'neg'}")
    data = tmp_path / "raw"
    data.mkdir()
    (data / "train.csv").write_text("\n".join(lines[:121]) + "\n", encoding="utf-8")
    (data / "dev.csv").write_text("\n".join([lines[0], *lines[121:]]) + "\n", encoding="utf-8")
    records = tmp_path / "records"
    assert create_classifier_data.main(["--task", "csv", "--data_dir", str(data), "--vocab_file", str(vocab("sst2")),
                                        "--text_a", "text", "--label", "label", "--max_seq_length", "16",
                                        "--output_dir", str(records), "--progress", "false"]) == 0
    out = tmp_path / "out"
    code = run_classifier.main(["--model", "bert_tiny", "--model.seq_length=16", "--model.vocab_size=30522",
                                "--progress=false", "--optimizer.adamw.learning_rate=1e-3", f"--data_dir={records}",
                                f"--output_dir={out}", "--batch_size=8", "--epochs=6", "--eval_batch_size=16",
                                "--log_every=5", "--warmup_proportion=0.1"])
    assert code == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["dev_accuracy"] == 1.0 and results["dev_examples"] == 40
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["event"] == "eval"]
    assert len(evals) == 6  # once per epoch
    best = json.loads((out / "best_model.json").read_text())
    assert best["value"] == max(r["dev_accuracy"] for r in evals)
    assert best["step"] == next(r["step"] for r in evals if r["dev_accuracy"] == best["value"])


def test_final_scores_and_predictions_are_those_of_the_best_checkpoint(tmp_path):
    """The best evaluation is not the last one: what all_results.json and the prediction file
    report must be the best checkpoint's, as a fresh process scoring best_model.ckpt finds."""
    records = make_records("stsb", tmp_path / "records")
    out = tmp_path / "out"
    base = [*TINY, "--model.vocab_size=30522", f"--data_dir={records}", "--eval_batch_size=4"]
    assert run_classifier.main([*base, f"--output_dir={out}", "--batch_size=2", "--train_steps=8", "--eval_every=1",
                                "--optimizer.adamw.learning_rate=3e-3", "--warmup_proportion=0",
                                "--metric_for_best=pearson"]) == 0
    evals = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["event"] == "eval"]
    best = json.loads((out / "best_model.json").read_text())
    assert [r["step"] for r in evals] == list(range(1, 9))
    assert best["step"] < 8, "the test needs a run whose best evaluation is not the last"
    assert evals[-1]["dev_pearson"] != best["value"]
    trained = json.loads((out / "all_results.json").read_text())
    assert trained["best_step"] == best["step"] and trained["dev_pearson"] == best["value"]
    again = tmp_path / "again"
    code = subprocess.run([sys.executable, str(ROOT / "run_classifier.py"), *base, f"--output_dir={again}",
                           "--do_train=false", f"--init_checkpoint={out / 'best_model.ckpt'}"], cwd=ROOT).returncode
    assert code == 0
    scored = json.loads((again / "all_results.json").read_text())
    assert scored["dev_pearson"] == pytest.approx(best["value"], abs=1e-6)
    assert (out / "predictions_dev.tsv").read_text() == (again / "predictions_dev.tsv").read_text()


def test_resume_continues_from_the_checkpoint(tmp_path, caplog):
    records = make_records("sst2", tmp_path / "records")
    common = [*TINY, "--model.vocab_size=30522", f"--data_dir={records}", f"--output_dir={tmp_path / 'out'}",
              "--batch_size=2", "--do_eval=false", "--save_checkpoint_steps=2"]
    assert run_classifier.main([*common, "--train_steps=4"]) == 0
    checkpoints = sorted((tmp_path / "out" / "checkpoints").glob("*.ckpt"))
    assert [p.name for p in checkpoints] == ["classifier-00000002.ckpt", "classifier-00000004.ckpt"]
    # more steps change the schedule: refused unless asked for
    assert run_classifier.main([*common, "--train_steps=6"]) == 1
    caplog.clear()
    with caplog.at_level("INFO"):
        assert run_classifier.main([*common, "--train_steps=6", "--allow_config_change=true"]) == 0
    assert any("resumed from" in r.message and "at step 4" in r.message for r in caplog.records)
    steps = [json.loads(line)["step"] for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_second_run_on_the_same_directory_fails_at_once(tmp_path, capsys):
    import os
    import time

    records = make_records("sst2", tmp_path / "records")
    out = tmp_path / "out"
    args = [*TINY, "--model.vocab_size=30522", f"--data_dir={records}", f"--output_dir={out}", "--batch_size=2",
            "--do_eval=false"]
    first = subprocess.Popen([sys.executable, str(ROOT / "run_classifier.py"), *args, "--train_steps=100000"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, GLOG_v="3"))
    try:
        deadline = time.time() + 300
        while not (out / "metrics.jsonl").exists():
            assert first.poll() is None and time.time() < deadline, "the first run ended"
            time.sleep(0.05)
        start = time.time()
        assert run_classifier.main([*args, "--train_steps=3", "--seed=7"]) == 1
        assert time.time() - start < 30
        err = capsys.readouterr().err
        assert f"is in use by another run (pid {first.pid})" in err, err
    finally:
        first.kill()
        first.wait()
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["step"] == 1
    assert "seed: 7" not in (out / "config.yaml").read_text()


def test_resume_with_another_learning_rate_is_refused_naming_it(tmp_path, capsys, caplog):
    records = make_records("sst2", tmp_path / "records")
    out = tmp_path / "out"
    args = [*TINY, "--model.vocab_size=30522", f"--data_dir={records}", f"--output_dir={out}", "--batch_size=2",
            "--do_eval=false", "--train_steps=2"]
    with caplog.at_level("INFO"):
        assert run_classifier.main(args) == 0
    steps = [r.message for r in caplog.records if r.message.startswith("step 1/2 ")]
    assert steps and " scale " not in steps[0], steps  # no loss scale to report: scaling is off
    saved = (out / "config.yaml").read_text()
    capsys.readouterr()
    assert run_classifier.main([*args, "--optimizer.adamw.learning_rate=2e-3"]) == 1
    err = capsys.readouterr().err
    assert "optimizer.adamw.learning_rate: 0.001 -> 0.002" in err and "--allow_config_change true" in err, err
    assert (out / "config.yaml").read_text() == saved
    # --resume false starts over: the earlier run's checkpoints and metrics go
    assert run_classifier.main([*args, "--optimizer.adamw.learning_rate=2e-3", "--resume=false"]) == 0
    assert "learning_rate: 0.002" in (out / "config.yaml").read_text()
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_truncated_eval_records_are_refused_before_the_first_step(tmp_path, capsys):
    records = make_records("sst2", tmp_path / "records")
    dev = records / "dev.mindrecord"
    size = dev.stat().st_size
    dev.write_bytes(dev.read_bytes()[: size // 2])
    out = tmp_path / "out"
    assert run_classifier.main([*TINY, "--model.vocab_size=30522", f"--data_dir={records}", f"--output_dir={out}",
                                "--batch_size=2", "--train_steps=2"]) == 1
    err = capsys.readouterr().err
    assert f"dev.mindrecord has {size // 2:,} bytes, the manifest says {size:,}" in err, err
    assert "tools/create_classifier_data.py" in err
    assert not out.exists()
    (records / "train.mindrecord.db").unlink()  # a missing index is named as such
    assert run_classifier.main([*TINY, "--model.vocab_size=30522", f"--data_dir={records}", f"--output_dir={out}",
                                "--batch_size=2", "--train_steps=2", "--do_eval=false"]) == 1
    assert "train.mindrecord.db (the index of train.mindrecord) is missing" in capsys.readouterr().err


def test_a_corrupt_newest_checkpoint_falls_back_and_ends_with_the_same_weights(tmp_path, caplog):
    records = make_records("sst2", tmp_path / "records")
    out = tmp_path / "out"
    args = [*TINY, "--model.vocab_size=30522", "--model.hidden_dropout_prob=0", "--model.attention_probs_dropout_prob=0",
            f"--data_dir={records}", f"--output_dir={out}", "--batch_size=2", "--do_eval=false", "--train_steps=6",
            "--save_checkpoint_steps=2", "--keep_checkpoint_max=0"]
    assert run_classifier.main(args) == 0
    reference = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(out / "best_model.ckpt")).items()}
    newest = out / "checkpoints" / "classifier-00000006.ckpt"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4096] = b"\x01" * 4096  # same size, content changed
    newest.write_bytes(bytes(data))
    caplog.clear()
    with caplog.at_level("INFO"):
        assert run_classifier.main(args) == 0
    assert any("skipping checkpoint" in r.message and "classifier-00000006.ckpt" in r.message for r in caplog.records)
    assert any("resumed from" in r.message and "at step 4" in r.message for r in caplog.records)
    final = {k: v.asnumpy() for k, v in ms.load_checkpoint(str(out / "best_model.ckpt")).items()}
    assert final.keys() == reference.keys()
    for name in final:
        np.testing.assert_allclose(final[name], reference[name], rtol=0, atol=1e-6, err_msg=name)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    results = json.loads((out / "all_results.json").read_text())
    assert results["train_steps"] == 6 and results["train_loss"] is not None


def test_eval_only_from_a_fine_tuned_checkpoint_reproduces_its_scores(tmp_path):
    records = make_records("mrpc", tmp_path / "records")
    out = tmp_path / "out"
    base = [*TINY, "--model.vocab_size=30522", f"--data_dir={records}", "--eval_batch_size=4"]
    assert run_classifier.main([*base, f"--output_dir={out}", "--batch_size=2", "--train_steps=3"]) == 0
    trained = json.loads((out / "all_results.json").read_text())
    again = tmp_path / "again"
    assert run_classifier.main([*base, f"--output_dir={again}", "--do_train=false",
                                f"--init_checkpoint={out / 'best_model.ckpt'}"]) == 0
    scored = json.loads((again / "all_results.json").read_text())
    for key in ("dev_f1", "dev_accuracy"):
        assert scored[key] == pytest.approx(trained[key])
    assert (out / "predictions_dev.tsv").read_text() == (again / "predictions_dev.tsv").read_text()


def test_export_of_the_fine_tuned_classifier(tmp_path):
    records = make_records("rte", tmp_path / "records")
    out = tmp_path / "out"
    assert run_classifier.main([*TINY, "--model.vocab_size=30522", f"--data_dir={records}", f"--output_dir={out}",
                                "--batch_size=2", "--train_steps=2", "--do_eval=false"]) == 0
    proc = subprocess.run([sys.executable, str(ROOT / "export.py"), "--run_config", str(out / "config.yaml"),
                           "--checkpoint", str(out / "best_model.ckpt"), "--output", str(tmp_path / "rte")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "rte.mindir").exists()


@pytest.mark.parametrize("case", ["vocab", "seq_length", "missing_dir", "unknown_split", "checkpoint_vocab",
                                  "no_examples"])
def test_bad_input_is_a_clear_error_before_training(case, tmp_path, capsys):
    records = make_records("sst2", tmp_path / "records")
    out = tmp_path / "out"
    args = [*TINY, "--model.vocab_size=30522", f"--data_dir={records}", f"--output_dir={out}", "--batch_size=2",
            "--train_steps=2"]
    expected = {
        "vocab": "vocab_size 30522 in .*dataset.json but 99 in the model config",
        "seq_length": f"max_seq_length {SEQ} in .*dataset.json but seq_length 20 in the model config",
        "missing_dir": "data_dir .*nowhere does not exist",
        "unknown_split": "split 'validation' is not in .*dataset.json",
        "checkpoint_vocab": "vocab",
        "no_examples": "split 'dev' of .* has no examples",
    }[case]
    if case == "vocab":
        args.append("--model.vocab_size=99")
    elif case == "seq_length":
        args.append("--model.seq_length=20")
    elif case == "missing_dir":
        args.append(f"--data_dir={tmp_path / 'nowhere'}")
    elif case == "unknown_split":
        args.append("--eval_splits=validation")
    elif case == "checkpoint_vocab":
        small = tmp_path / "small.ckpt"
        from src.training import BertClassificationLoss
        from tests.conftest import tiny_config
        ms.save_checkpoint(BertClassificationLoss(tiny_config(vocab_size=99), 2), str(small))
        args.append(f"--init_checkpoint={small}")
    elif case == "no_examples":
        info = json.loads((records / "dataset.json").read_text())
        info["splits"]["dev"]["examples"] = 0
        (records / "dataset.json").write_text(json.dumps(info))
    assert run_classifier.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    import re
    assert re.search(expected, err), err
    assert not (out / "checkpoints").exists() and not (out / "all_results.json").exists()


@pytest.mark.slow
def test_minilm_on_real_rt_polarity_sentences(tmp_path):
    """The real MiniLM checkpoint, 150 steps of batch 32 on the real movie-review sentences:
    dev accuracy well above chance (the full 3-seed comparison with HF is
    benchmarks/finetune_rt_polarity.py)."""
    minilm = fetch("minilm")
    converted = tmp_path / "minilm.ckpt"
    subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "--input", str(minilm),
                    "--output", str(converted)], check=True, cwd=ROOT, capture_output=True)
    records = tmp_path / "records"
    assert create_classifier_data.main(["--task", "rt_polarity", "--vocab_file", str(minilm / "vocab.txt"),
                                        "--max_seq_length", "64", "--output_dir", str(records),
                                        "--progress", "false"]) == 0
    out = tmp_path / "out"
    assert run_classifier.main(["--config", "classifier_rt_polarity", f"--data_dir={records}",
                                f"--output_dir={out}", f"--init_checkpoint={converted}", "--train_steps=150",
                                "--progress=false"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["dev_examples"] == 1074
    assert results["dev_accuracy"] > 0.75, results
