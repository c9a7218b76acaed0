"""Extractive QA scoring with the official arithmetic: SQuAD v1.1, SQuAD v2.0 and CMRC 2018.

* v1.1 (``evaluate-v1.1.py``): answers normalised (lower case, punctuation and the articles
  a/an/the removed, whitespace collapsed); exact match of the normalised strings and F1 of their
  bags of tokens, the maximum over the gold answers; 100 x the mean over **every** question (a
  question without a prediction scores 0).
* v2.0 (``evaluate-v2.0.py``): gold answers that normalise to nothing are dropped (none left: the
  question is unanswerable and its gold answer is ""); F1 of two empty answers is 1; questions
  without a prediction are left out (as the official script does); a null probability above
  ``na_prob_thresh`` turns a prediction into ""; HasAns / NoAns breakdowns; with null odds, the
  best exact and best F1 over thresholds (sweep in ascending null odds, +score for an answerable
  question, -1 for a non-empty prediction on an unanswerable one).
* CMRC 2018 (``cmrc2018_evaluate.py``): every Chinese character and listed punctuation mark is a
  token and the runs between them are word-tokenised (NLTK's Treebank tokenizer, which
  ``nltk.word_tokenize`` applies to each sentence; answers are not split into sentences here);
  F1 from the longest common contiguous run of tokens, punctuation removed; EM after punctuation
  removal; every question counted. Needs ``nltk`` (``pip install nltk``).

``dataset`` is the ``data`` list of a SQuAD-layout JSON file; ``predictions`` maps question ids to
answer strings.
"""
from __future__ import annotations

import collections
import re
import string
from typing import Iterable, Iterator, Mapping, Optional

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (both official SQuAD scripts)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_v1(prediction: str, gold: str) -> float:
    """v1.1 token F1 (0 when either side normalises to nothing)."""
    pred, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((collections.Counter(pred) & collections.Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def f1_v2(prediction: str, gold: str) -> float:
    """v2.0 token F1: two empty answers agree (1), an empty and a non-empty one do not (0)."""
    pred = normalize_answer(prediction).split() if prediction else []
    truth = normalize_answer(gold).split() if gold else []
    if not pred or not truth:
        return float(pred == truth)
    return f1_v1(prediction, gold)


def questions(dataset: Iterable[Mapping]) -> Iterator[Mapping]:
    """Every question (``qas`` entry) of a SQuAD-layout ``data`` list, in file order."""
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def evaluate_v1(dataset: Iterable[Mapping], predictions: Mapping[str, str]) -> dict:
    """``exact_match`` and ``f1`` (percent) over every question, ``total`` and ``missing`` counts."""
    total = missing = 0
    em = f1 = 0.0
    for qa in questions(dataset):
        total += 1
        if qa["id"] not in predictions:
            missing += 1
            continue
        golds = [a["text"] for a in qa["answers"]]
        prediction = predictions[qa["id"]]
        em += max(exact_match(prediction, g) for g in golds)
        f1 += max(f1_v1(prediction, g) for g in golds)
    return {"exact_match": 100.0 * em / total if total else 0.0, "f1": 100.0 * f1 / total if total else 0.0,
            "total": total, "missing": missing}


def _scores_v2(dataset: Iterable[Mapping], predictions: Mapping[str, str]):
    has_answer, exact, f1 = {}, {}, {}
    for qa in questions(dataset):
        qid = qa["id"]
        golds = [a["text"] for a in qa.get("answers", []) if normalize_answer(a["text"])] or [""]
        has_answer[qid] = bool(qa.get("answers"))  # the official script: any gold answer at all
        if qid not in predictions:
            continue
        prediction = predictions[qid]
        exact[qid] = max(float(normalize_answer(g) == normalize_answer(prediction)) for g in golds)
        f1[qid] = max(f1_v2(prediction, g) for g in golds)
    return has_answer, exact, f1


def _mean(scores: Mapping[str, float], ids: Optional[Iterable[str]] = None) -> tuple[float, int]:
    ids = list(scores) if ids is None else list(ids)
    return (100.0 * sum(scores[q] for q in ids) / len(ids) if ids else 0.0), len(ids)


def _best_threshold(predictions, scores, null_odds, has_answer) -> tuple[float, float]:
    score = best = sum(1 for q in has_answer if not has_answer[q])
    threshold = 0.0
    for qid in sorted(null_odds, key=lambda q: null_odds[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, threshold = score, null_odds[qid]
    return 100.0 * best / len(scores), threshold


def evaluate_v2(dataset: Iterable[Mapping], predictions: Mapping[str, str],
                null_odds: Optional[Mapping[str, float]] = None, na_prob_thresh: float = 1.0) -> dict:
    """The official v2.0 figures: ``exact``, ``f1``, ``total``, ``HasAns_*`` and ``NoAns_*``, and with
    ``null_odds`` ``best_exact``, ``best_exact_thresh``, ``best_f1``, ``best_f1_thresh``."""
    dataset = list(dataset)
    has_answer, exact, f1 = _scores_v2(dataset, predictions)
    odds = {q: 0.0 for q in has_answer} if null_odds is None else dict(null_odds)
    thresholded = []
    for raw in (exact, f1):
        thresholded.append({q: (float(not has_answer[q]) if odds.get(q, 0.0) > na_prob_thresh else s)
                            for q, s in raw.items()})
    result: dict = {}
    result["exact"], result["total"] = _mean(thresholded[0])
    result["f1"], _ = _mean(thresholded[1])
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [q for q in thresholded[0] if has_answer[q] is wanted]
        if ids:
            result[f"{name}_exact"], result[f"{name}_total"] = _mean(thresholded[0], ids)
            result[f"{name}_f1"], _ = _mean(thresholded[1], ids)
    if null_odds is not None and exact:
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(predictions, exact, odds, has_answer)
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(predictions, f1, odds, has_answer)
    return result


# --- CMRC 2018 ---------------------------------------------------------------------------------------
_CMRC_PUNCTUATION = frozenset(["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=", "，", "。", "：", "？", "！",
                               "“", "”", "；", "’", "《", "》", "……", "·", "、", "「", "」", "（", "）", "－", "～",
                               "『", "』"])
_CHINESE = re.compile(r"[\u4e00-\u9fa5]")


def _word_tokenize(text: str) -> list[str]:
    try:
        from nltk.tokenize import NLTKWordTokenizer
    except ImportError:
        raise ImportError("CMRC 2018 scoring tokenises the non-Chinese runs with NLTK: pip install nltk") from None
    return NLTKWordTokenizer().tokenize(text)


def cmrc_segments(text: str, remove_punctuation: bool = False) -> list[str]:
    """CMRC 2018's tokens: each Chinese character and punctuation mark, word tokens in between."""
    out: list[str] = []
    run = ""
    for ch in str(text).lower().strip():
        if remove_punctuation and ch in _CMRC_PUNCTUATION:
            continue
        if _CHINESE.search(ch) or ch in _CMRC_PUNCTUATION:
            if run:
                out.extend(_word_tokenize(run))
                run = ""
            out.append(ch)
        else:
            run += ch
    if run:
        out.extend(_word_tokenize(run))
    return out


def _cmrc_strip(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in _CMRC_PUNCTUATION)


def _longest_common_run(a: list[str], b: list[str]) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def cmrc_f1(prediction: str, golds: Iterable[str]) -> float:
    scores = []
    pred = cmrc_segments(prediction, remove_punctuation=True)
    for gold in golds:
        truth = cmrc_segments(gold, remove_punctuation=True)
        common = _longest_common_run(truth, pred)
        if common == 0:
            scores.append(0.0)
            continue
        precision, recall = common / len(pred), common / len(truth)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def cmrc_exact(prediction: str, golds: Iterable[str]) -> float:
    return float(any(_cmrc_strip(gold) == _cmrc_strip(prediction) for gold in golds))


def evaluate_cmrc(dataset: Iterable[Mapping], predictions: Mapping[str, str]) -> dict:
    """``em``, ``f1`` and their ``average`` (percent) over every question; ``total`` and ``missing``."""
    total = missing = 0
    em = f1 = 0.0
    for qa in questions(dataset):
        total += 1
        qid = str(qa["id"]).strip()
        if qid not in predictions:
            missing += 1
            continue
        golds = [a["text"] for a in qa["answers"]]
        prediction = str(predictions[qid])
        f1 += cmrc_f1(prediction, golds)
        em += cmrc_exact(prediction, golds)
    em, f1 = (100.0 * em / total, 100.0 * f1 / total) if total else (0.0, 0.0)
    return {"em": em, "f1": f1, "average": (em + f1) / 2, "total": total, "missing": missing}


__all__ = ["cmrc_exact", "cmrc_f1", "cmrc_segments", "evaluate_cmrc", "evaluate_v1", "evaluate_v2", "exact_match",
           "f1_v1", "f1_v2", "normalize_answer", "questions"]
