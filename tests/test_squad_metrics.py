"""SQuAD v1.1 / v2.0 and CMRC 2018 scoring (src/squad_metrics.py) on hand-worked cases: the numbers
in the comments are worked out from the official scripts' formulas."""
from __future__ import annotations

import pytest

from src.squad_metrics import (cmrc_segments, evaluate_cmrc, evaluate_v1, evaluate_v2, f1_v1, f1_v2,
                               normalize_answer)


def dataset(*qas: dict) -> list:
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": list(qas)}]}]


def qa(qid: str, *answers: str) -> dict:
    return {"id": qid, "question": "?", "answers": [{"text": a, "answer_start": 0} for a in answers]}


def test_normalisation():
    assert normalize_answer("  The  Eiffel-Tower, an icon!  ") == "eiffeltower icon"
    assert normalize_answer("A theory") == "theory" and normalize_answer("Theatre") == "theatre"
    assert f1_v1("the", "the") == 0.0 and f1_v2("the", "") == 1.0 and f1_v2("", "x") == 0.0


def test_v1_every_question_counts():
    data = dataset(qa("q1", "The Eiffel Tower", "Eiffel tower"), qa("q2", "Denver Broncos"), qa("q3", "1990"),
                   qa("q4", "missing"))
    result = evaluate_v1(data, {"q1": "eiffel Tower!", "q2": "the Broncos", "q3": ""})
    # q1 exact; q2 F1 2 * 1 * 0.5 / 1.5; q3 0; q4 has no prediction: 0
    assert result["exact_match"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)
    assert result["total"] == 4 and result["missing"] == 1


def test_v2_breakdowns_threshold_and_best_threshold():
    data = dataset(qa("q1", "Paris"), qa("q2"), qa("q3"), qa("q4", "in 1990", "1990"))
    predictions = {"q1": "Paris", "q2": "", "q3": "London", "q4": "1990 year"}
    result = evaluate_v2(data, predictions)
    # exact 1, 1, 0, 0; F1 1, 1 (empty vs empty), 0, max(0.5, 2/3)
    assert result["exact"] == pytest.approx(50.0) and result["f1"] == pytest.approx(100 * (2 + 2 / 3) / 4)
    assert result["HasAns_exact"] == pytest.approx(50.0) and result["HasAns_f1"] == pytest.approx(100 * 5 / 6)
    assert result["NoAns_exact"] == pytest.approx(50.0) and result["NoAns_total"] == 2
    assert "best_exact" not in result
    odds = {"q1": -5.0, "q2": 3.0, "q3": -1.0, "q4": 0.5}
    result = evaluate_v2(data, predictions, odds)
    # sweep in ascending odds from 2 (the unanswerable count): q1 +1 -> 3 (best, at -5), q3 -1, q4 +0, q2 0
    assert result["best_exact"] == pytest.approx(75.0) and result["best_exact_thresh"] == -5.0
    # F1: q1 +1 -> 3 (best), q3 -1 -> 2, q4 +2/3, q2 0: still 3
    assert result["best_f1"] == pytest.approx(75.0) and result["best_f1_thresh"] == -5.0
    # null probability above the threshold: the prediction becomes "" (q2 right, q4 wrong)
    result = evaluate_v2(data, predictions, odds, na_prob_thresh=0.0)
    assert result["exact"] == pytest.approx(50.0)


def test_cmrc_character_scoring():
    pytest.importorskip("nltk")
    assert cmrc_segments("1998年的Hello world，") == ["1998", "年", "的", "hello", "world", "，"]
    assert cmrc_segments("1998年的Hello world，", remove_punctuation=True)[-1] == "world"
    data = dataset(qa("q1", "北京大学"), qa("q2", "1998年"), qa("q3", "李明", "李先生"), qa("q4", "x"))
    result = evaluate_cmrc(data, {"q1": "北京大学。", "q2": "1998", "q3": "王明"})
    # q1 exact; q2 F1 2 * 1 * 0.5 / 1.5; q3 max(0.5, 0); q4 missing: 0
    assert result["em"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0.5) / 4)
    assert result["average"] == pytest.approx((result["em"] + result["f1"]) / 2) and result["missing"] == 1
