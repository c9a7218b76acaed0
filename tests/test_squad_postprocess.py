"""SQuAD postprocessing (src/squad_postprocess.py): Google's get_final_text, the oracle round trip on
the real SQuAD-format fixtures, the candidate filters, and the SQuAD 2.0 null answer (including a
question whose every candidate is null)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from src.data.squad_data import convert_examples_to_features, read_squad_examples
from src.sample_data import fetch
from src.squad_metrics import evaluate_v1
from src.squad_postprocess import NO_SPAN_ODDS, get_final_text, write_predictions
from src.tokenization import FullTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(fetch("vocab_en"), do_lower_case=True)


def gold_logits(features, size, null=False):
    logits = {}
    for f in features:
        start, end = np.full(size, -10.0, np.float32), np.full(size, -10.0, np.float32)
        start[f.start_position] = end[f.end_position] = 10.0
        if null:
            start[0] = end[0] = 20.0
        logits[f.unique_id] = (start, end)
    return logits


def test_get_final_text_maps_back_to_the_original_characters():
    assert get_final_text("steve smith", "Steve Smith's", True) == "Steve Smith"
    assert get_final_text("1898", "(1898)", True) == "1898"
    assert get_final_text("cafe", "Café", True) == "Café"
    assert get_final_text("nowhere", "Steve Smith's", True) == "Steve Smith's"  # not found: the whole words


@pytest.mark.parametrize("name", ["squad.json", "quoref_sample.json", "quac_sample.json"])
def test_the_gold_spans_come_back_through_postprocessing(name, tokenizer):
    path = fetch("squad_fixtures") / name
    examples, _ = read_squad_examples(path, is_training=True)
    features = convert_examples_to_features(examples, tokenizer, 128, 48, 32, is_training=True)
    predictions, nbest, null_odds = write_predictions(examples, features, gold_logits(features, 128),
                                                      max_answer_length=200)  # QuAC's answers are long
    assert set(predictions) == {e.qas_id for e in examples} and null_odds == {}
    assert all(abs(sum(n["probability"] for n in nbest[q]) - 1) < 1e-6 for q in nbest)
    data = json.loads(path.read_text())["data"]
    first = {e.qas_id: e.orig_answer_text for e in examples}
    scored = evaluate_v1([{"paragraphs": [{"qas": [dict(qa, answers=[{"text": first[qa["id"]]}])
                                                   for qa in p["qas"] if qa["id"] in first]}
                                          for p in a["paragraphs"]]} for a in data], predictions)
    assert scored["exact_match"] >= 90.0 and scored["f1"] >= 95.0, scored


def test_filters_and_every_feature_must_have_logits(tokenizer, tmp_path):
    context = "alpha beta gamma delta epsilon"
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": "q", "question": "which?", "answers": [{"text": "gamma", "answer_start": 11}]}]}]}]}))
    examples, _ = read_squad_examples(path, is_training=True)
    (feature,) = convert_examples_to_features(examples, tokenizer, 32, 8, 8, is_training=True)
    size = 32
    start, end = np.full(size, -10.0, np.float32), np.full(size, -10.0, np.float32)
    first_doc = min(feature.token_to_orig_map)
    start[first_doc + 3], end[first_doc + 1] = 9.0, 9.0  # reversed: dropped
    start[1], end[1] = 8.0, 8.0  # a question piece: not in the document, dropped
    start[first_doc + 2], end[first_doc + 2] = 5.0, 5.0  # "gamma"
    predictions, nbest, _ = write_predictions(examples, [feature], {feature.unique_id: (start, end)})
    assert predictions["q"] == "gamma"
    predictions, _, _ = write_predictions(examples, [feature], {feature.unique_id: (start, end)}, max_answer_length=0)
    assert predictions["q"] == ""  # nothing valid: an empty answer, no crash
    with pytest.raises(ValueError, match="has no logits"):
        write_predictions(examples, [feature], {})


def test_v2_null_answer_threshold_and_all_null_candidates(tokenizer, tmp_path):
    context = "alpha beta gamma delta epsilon"
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": "q", "question": "which?", "answers": [{"text": "gamma", "answer_start": 11}]},
        {"id": "n", "question": "none?", "answers": [], "is_impossible": True}]}]}]}))
    examples, _ = read_squad_examples(path, is_training=True, version_2_with_negative=True)
    features = convert_examples_to_features(examples, tokenizer, 32, 8, 8, is_training=True)
    logits = gold_logits(features, 32)
    predictions, nbest, odds = write_predictions(examples, features, logits, version_2_with_negative=True)
    assert predictions["q"] == "gamma" and any(n["text"] == "" for n in nbest["q"])
    # q: null score start[0] + end[0] = -20 minus the best span's 20; n: the null score 20 minus a -20 span
    assert odds["q"] == pytest.approx(-40.0) and odds["n"] == pytest.approx(40.0) and predictions["n"] == ""
    predictions, _, odds = write_predictions(examples, features, logits, version_2_with_negative=True,
                                             max_answer_length=0)
    assert predictions == {"q": "", "n": ""} and odds == {"q": NO_SPAN_ODDS, "n": NO_SPAN_ODDS}  # all null
    predictions, _, _ = write_predictions(examples, features, logits, version_2_with_negative=True,
                                          null_score_diff_threshold=-50.0)
    assert predictions["q"] == ""  # a threshold below the odds predicts null
    null_first = gold_logits(features, 32, null=True)
    predictions, _, odds = write_predictions(examples, features, null_first, version_2_with_negative=True)
    assert predictions["q"] == "" and odds["q"] == pytest.approx(20.0)
