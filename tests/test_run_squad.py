"""run_squad.py end to end at tiny scale: the SQuAD-format fixtures of the sample data (squad.json,
quoref, QuAC with CANNOTANSWER) through records, training, evaluation equal to the official
arithmetic on the written predictions, a v2 set, export, the evaluation tool, and bad input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import run_squad
from src.sample_data import fetch
from tools import create_squad_data, evaluate_squad

ROOT = Path(__file__).resolve().parent.parent
V2_FIXTURE = ROOT / "tests" / "fixtures" / "squad" / "v2.json"
CMRC_FIXTURE = ROOT / "tests" / "fixtures" / "squad" / "cmrc.json"
SEQ, STRIDE, QUERY = 64, 24, 16
TINY = ["--model", "bert_tiny", f"--model.seq_length={SEQ}", f"--model.max_position_embeddings={SEQ}",
        "--model.vocab_size=30522", "--progress=false", "--log_every=1", "--optimizer.adamw.learning_rate=1e-3",
        "--warmup_proportion=0", f"--doc_stride={STRIDE}", f"--max_query_length={QUERY}"]
FIXTURES = ("squad.json", "quoref_sample.json", "quac_sample.json")


def make_records(data: Path, out: Path, *extra: str, train: Path | None = None) -> Path:
    argv = ["--predict_file", str(data), "--train_file", str(train or data), "--vocab_file", str(fetch("vocab_en")),
            "--max_seq_length", str(SEQ), "--doc_stride", str(STRIDE), "--max_query_length", str(QUERY),
            "--output_dir", str(out), "--progress", "false", *extra]
    assert create_squad_data.main(argv) == 0
    return out


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_trains_evaluates_and_scores_like_the_official_script(name, tmp_path):
    from src.squad_metrics import evaluate_v1

    source = fetch("squad_fixtures") / name
    records = make_records(source, tmp_path / "records")
    out = tmp_path / "out"
    assert run_squad.main([*TINY, f"--data_dir={records}", f"--output_dir={out}", "--batch_size=2",
                           "--eval_batch_size=3", "--train_steps=3"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    data = json.loads(source.read_text(encoding="utf-8"))["data"]
    predictions = json.loads((out / "predictions_dev.json").read_text(encoding="utf-8"))
    official = evaluate_v1(data, predictions)
    assert official["missing"] == 0
    assert results["dev_exact_match"] == pytest.approx(official["exact_match"])
    assert results["dev_f1"] == pytest.approx(official["f1"])
    assert results["dev_examples"] == official["total"]  # every question, QuAC's repeated ids included
    nbest = json.loads((out / "nbest_predictions_dev.json").read_text(encoding="utf-8"))
    for qid, answer in predictions.items():
        assert nbest[qid][0]["text"] == answer
        assert sum(n["probability"] for n in nbest[qid]) == pytest.approx(1.0, abs=1e-5)
    assert not (out / "null_odds_dev.json").exists()
    info = json.loads((records / "dataset.json").read_text())
    assert results["train_examples"] == info["splits"]["train"]["examples"]


def test_learns_the_answers_of_its_training_set(tmp_path):
    """A tiny model must learn the spans of squad.json (trained and scored on the same questions)."""
    source = fetch("squad_fixtures") / "squad.json"
    records = make_records(source, tmp_path / "records")
    out = tmp_path / "out"
    assert run_squad.main([*TINY, f"--data_dir={records}", f"--output_dir={out}", "--batch_size=4",
                           "--train_steps=120", "--eval_every=40", "--optimizer.adamw.learning_rate=3e-3"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    assert results["dev_f1"] > 90.0, results


def test_chinese_answers_come_back_as_exact_character_spans_and_score_like_cmrc(tmp_path):
    """Chinese contexts without spaces (CMRC 2018 layout): a tiny model learns the spans, the
    predicted texts are exact substrings of the context (no inserted spaces), and the CMRC scores
    equal the official arithmetic on the written predictions."""
    from src.squad_metrics import evaluate_cmrc

    records = tmp_path / "records"
    assert create_squad_data.main(["--train_file", str(CMRC_FIXTURE), "--predict_file", str(CMRC_FIXTURE),
                                   "--vocab_file", str(fetch("vocab_zh")), "--max_seq_length", str(SEQ),
                                   "--doc_stride", str(STRIDE), "--max_query_length", str(QUERY), "--scorer", "cmrc",
                                   "--output_dir", str(records), "--progress", "false"]) == 0
    out = tmp_path / "out"
    assert run_squad.main([*TINY, "--model.vocab_size=21128", f"--data_dir={records}", f"--output_dir={out}",
                           "--batch_size=4", "--train_steps=120", "--eval_every=40",
                           "--optimizer.adamw.learning_rate=3e-3"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    data = json.loads(CMRC_FIXTURE.read_text(encoding="utf-8"))["data"]
    predictions = json.loads((out / "predictions_dev.json").read_text(encoding="utf-8"))
    official = evaluate_cmrc(data, predictions)
    assert results["dev_em"] == pytest.approx(official["em"]) and results["dev_f1"] == pytest.approx(official["f1"])
    contexts = {qa["id"]: p["context"] for a in data for p in a["paragraphs"] for qa in p["qas"]}
    for qid, text in predictions.items():
        assert text and text in contexts[qid], (qid, text)
    assert results["dev_em"] == 100.0, predictions


def test_v2_records_are_scored_as_v2_and_never_as_v1(tmp_path, capsys):
    records = make_records(V2_FIXTURE, tmp_path / "records", "--version_2_with_negative", "true")
    info = json.loads((records / "dataset.json").read_text())
    assert info["version_2_with_negative"] and info["splits"]["dev"]["impossible"] == 3
    refused = tmp_path / "refused"
    assert run_squad.main([*TINY, f"--data_dir={records}", f"--output_dir={refused}", "--train_steps=1",
                           "--version_2_with_negative=false"]) == 1
    assert "version_2_with_negative True in" in capsys.readouterr().err and not refused.exists()
    out = tmp_path / "out"
    assert run_squad.main([*TINY, f"--data_dir={records}", f"--output_dir={out}", "--batch_size=2",
                           "--train_steps=4"]) == 0
    results = json.loads((out / "all_results.json").read_text())
    for key in ("exact", "f1", "HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"):
        assert f"dev_{key}" in results, key
    assert results["dev_examples"] == 7
    null_odds = json.loads((out / "null_odds_dev.json").read_text())
    predictions = json.loads((out / "predictions_dev.json").read_text())
    assert set(null_odds) == set(predictions)
    for qid, odds in null_odds.items():  # the default threshold 0.0
        assert (predictions[qid] == "") == (odds > 0.0)
    scored = evaluate_squad.evaluate_files(str(V2_FIXTURE), str(out / "predictions_dev.json"), "2",
                                           str(out / "null_odds_dev.json"))
    assert scored["f1"] == pytest.approx(results["dev_f1"])
    assert scored["best_f1"] == pytest.approx(results["dev_best_f1"])


def test_v2_data_without_the_flag_is_refused_before_anything_is_written(tmp_path, capsys):
    argv = ["--train_file", str(V2_FIXTURE), "--vocab_file", str(fetch("vocab_en")), "--output_dir",
            str(tmp_path / "out"), "--progress", "false"]
    assert create_squad_data.main(argv) == 1
    err = capsys.readouterr().err
    assert "question 'n3'" in err and "--version_2_with_negative" in err
    assert not (tmp_path / "out").exists()


def _squad(tmp_path, paragraph: dict, name="bad.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [paragraph]}]}))
    return path


BAD_DATA = {
    "answer not at answer_start": (
        {"context": "Paris is the capital of France.",
         "qas": [{"id": "q7", "question": "What?", "answers": [{"text": "France", "answer_start": 3}]}]},
        "question 'q7': answer 'France' is not the context at answer_start 3"),
    "question without id": (
        {"context": "Paris is the capital of France.",
         "qas": [{"question": "What?", "answers": [{"text": "France", "answer_start": 24}]}]},
        "qas[0]: the question has no id"),
    "not squad layout": (None, "no 'data' field (not a SQuAD-layout file)"),
    "no questions": ({"context": "Paris is the capital of France.", "qas": []},
                     "has no question to use (0 questions"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_a_clear_error_and_leaves_nothing(case, tmp_path, capsys):
    paragraph, message = BAD_DATA[case]
    if paragraph is None:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps([{"context": "x"}]))
    else:
        path = _squad(tmp_path, paragraph)
    out = tmp_path / "out"
    assert create_squad_data.main(["--train_file", str(path), "--vocab_file", str(fetch("vocab_en")),
                                   "--output_dir", str(out), "--progress", "false"]) == 1
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.json"]


BAD_RUNS = {
    "seq_length": ([f"--model.seq_length={SEQ * 2}", f"--model.max_position_embeddings={SEQ * 2}"],
                   f"max_seq_length {SEQ} in"),
    "doc_stride": (["--doc_stride=128"], f"doc_stride {STRIDE} in"),
    "vocab": (["--model.vocab_size=21128"], "vocab_size 30522 in"),
}


@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_records_that_disagree_with_the_config_are_a_clear_error(case, tmp_path, capsys):
    records = make_records(fetch("squad_fixtures") / "squad.json", tmp_path / "records")
    extra, message = BAD_RUNS[case]
    assert run_squad.main([*TINY, *extra, f"--data_dir={records}", f"--output_dir={tmp_path / 'out'}",
                           "--train_steps=1"]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_prediction_file_missing_questions_is_a_clear_error(tmp_path, capsys):
    source = fetch("squad_fixtures") / "squad.json"
    data = json.loads(source.read_text())["data"]
    ids = [qa["id"] for a in data for p in a["paragraphs"] for qa in p["qas"]]
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps({qid: "x" for qid in ids[1:]}))
    assert evaluate_squad.main(["--data_file", str(source), "--prediction_file", str(predictions)]) == 1
    err = capsys.readouterr().err
    assert str(predictions) in err and repr(ids[0]) in err and f"1 of {len(ids)}" in err
    assert evaluate_squad.main(["--data_file", str(source), "--prediction_file", str(predictions),
                                "--allow_missing"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["missing"] == 1 and scores["total"] == len(ids)


def test_export_gives_the_logits_of_evaluation(tmp_path):
    import mindspore as ms
    import numpy as np

    from src.checkpoint import load_checkpoint_into
    from src.config import SquadConfig, parse_config
    from src.data.records import read_batches
    from src.squad import SquadTask, predict_spans
    from src.training import BertQuestionAnsweringLoss

    records = make_records(fetch("squad_fixtures") / "squad.json", tmp_path / "records")
    out = tmp_path / "out"
    assert run_squad.main([*TINY, f"--data_dir={records}", f"--output_dir={out}", "--batch_size=2",
                           "--train_steps=2", "--eval_batch_size=3"]) == 0
    sys.path.insert(0, str(ROOT))
    import export

    mindir = tmp_path / "squad.mindir"
    assert export.main(["--run_config", str(out / "config.yaml"), "--checkpoint", str(out / "best_model.ckpt"),
                        "--batch_size", "3", "--output", str(mindir)]) == 0
    config = parse_config(SquadConfig, ["--config", str(out / "config.yaml")])
    task = SquadTask(records, config)
    network = BertQuestionAnsweringLoss(config.model)
    load_checkpoint_into(network, out / "best_model.ckpt")
    dataset = task._dataset("dev", config, batch_size=3, shuffle=False, drop_remainder=False)
    starts, ends = predict_spans(network, dataset, 3)
    graph = ms.nn.GraphCell(ms.load(str(mindir)))
    batch = next(read_batches(records / "dev.mindrecord", batch_size=3))
    start, end = graph(*[ms.Tensor(batch[k].astype(np.int32)) for k in ("input_ids", "input_mask", "segment_ids")])
    real = batch["input_mask"] == 1  # padding positions are not computed by the CPU kernels
    np.testing.assert_allclose(start.asnumpy()[real], starts[:3][real], atol=1e-4)
    np.testing.assert_allclose(end.asnumpy()[real], ends[:3][real], atol=1e-4)


def test_unanswerable_set_from_v1(tmp_path):
    """squad_v1_unanswerable's construction: every question kept, each negative asked of another
    paragraph of its article that contains none of its answers."""
    from src.data.squad_data import add_unanswerable

    data = json.loads(V2_FIXTURE.read_text())["data"]
    data[0]["paragraphs"].append({"context": "Rollo was a Viking leader who founded Normandy.", "qas": [
        {"id": "n5", "question": "Who founded Normandy?", "answers": [{"text": "Rollo", "answer_start": 0}]}]})
    out, counts = add_unanswerable(data, seed=3)
    assert counts["questions"] == 8 and counts["unanswerable"] + counts["no_other_paragraph"] == 8
    contexts = {q["id"]: p["context"] for a in out for p in a["paragraphs"] for q in p["qas"]}
    originals = {q["id"]: q for a in data for p in a["paragraphs"] for q in p["qas"]}
    negatives = [q for q in contexts if q.endswith("_unanswerable")]
    assert len(negatives) == counts["unanswerable"] > 0
    for qid in negatives:
        source = originals[qid[:-len("_unanswerable")]]
        assert contexts[qid] != contexts[source["id"]]
        assert not any(a["text"].lower() in contexts[qid].lower() for a in source["answers"])
    assert set(originals) <= set(contexts)


def test_help_opens_with_the_commands(capsys):
    with pytest.raises(SystemExit):
        run_squad.main(["--help"])
    text = capsys.readouterr().out
    assert "python tools/create_squad_data.py --train_file" in text and "python run_squad.py --config" in text


def test_a_run_start_can_be_reproduced_outside_the_run(tmp_path):
    """What benchmarks/squad_minilm.py --paired hands to HuggingFace: the seeded span head of
    initial_network is the same in every process, and reading unique_ids with the training batches
    leaves their shuffled order unchanged."""
    import numpy as np

    from src.config import SquadConfig, parse_config
    from src.finetune import initial_network
    from src.squad import SquadTask

    records = make_records(fetch("squad_fixtures") / "squad.json", tmp_path / "records")
    config = parse_config(SquadConfig, [*TINY, f"--data_dir={records}", "--seed=7", "--batch_size=4"])
    task = SquadTask(records, config)
    heads = [{p.name: p.asnumpy() for p in initial_network(config, task).trainable_params()
              if p.name.startswith("qa_outputs.")} for _ in range(2)]
    assert sorted(heads[0]) == ["qa_outputs.bias", "qa_outputs.weight"]
    assert all(np.array_equal(heads[0][k], heads[1][k]) for k in heads[0])
    plain = list(task.train_dataset(config, 0, validate=False).create_dict_iterator(num_epochs=1, output_numpy=True))
    tagged = list(task.train_dataset(config, 0, validate=False, extra_columns=["unique_ids"]).create_dict_iterator(
        num_epochs=1, output_numpy=True))
    assert len(plain) == len(tagged) > 1
    for a, b in zip(plain, tagged):
        assert np.array_equal(a["input_ids"], b["input_ids"])
    ids = np.concatenate([b["unique_ids"][:, 0] for b in tagged])
    assert len(set(ids.tolist())) == len(ids)
    assert not np.array_equal(ids, np.sort(ids))  # shuffled
