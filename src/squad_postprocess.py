"""Start/end logits of every feature -> the answer text of every question (google-research/bert's
``write_predictions``), vectorised over each feature's candidates.

Per question, over all its features: the ``n_best_size`` highest start and end logits of each
feature; spans dropped when they leave the document pieces, start in a piece that is not in its
max-context window, end before they start or are longer than ``max_answer_length`` pieces; the
rest ranked by start + end logit; the WordPiece text mapped back to the original words
(``get_final_text``: detokenised text located in the basic-tokenised original, character by
character without spaces); duplicate texts dropped; softmax over the n-best scores.

SQuAD 2.0 (``version_2_with_negative``): the null score is the minimum over features of
start[0] + end[0]; the null answer joins the candidates; the prediction is "" when null score -
best non-null score > ``null_score_diff_threshold``; that difference per question is the null
odds. A question whose every candidate is null predicts "" with null odds ``NO_SPAN_ODDS``
(google-research/bert crashes there).
"""
from __future__ import annotations

import collections
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from .data.squad_data import SquadExample, SquadFeature, join_words
from .tokenization import basic_tokenize

NO_SPAN_ODDS = 1e9  # null odds of a question with no non-null candidate


def _strip_spaces(text: str) -> Tuple[str, Dict[int, int]]:
    chars, to_original = [], {}
    for i, c in enumerate(text):
        if c == " ":
            continue
        to_original[len(chars)] = i
        chars.append(c)
    return "".join(chars), to_original


def get_final_text(pred_text: str, orig_text: str, do_lower_case: bool) -> str:
    """The part of ``orig_text`` that the detokenised prediction ``pred_text`` covers (Google's);
    ``orig_text`` itself when they cannot be aligned."""
    tok_text = " ".join(basic_tokenize(orig_text, do_lower_case))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = _strip_spaces(orig_text)
    tok_ns, tok_map = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_to_ns = {v: k for k, v in tok_map.items()}
    if start not in tok_to_ns or end not in tok_to_ns:
        return orig_text
    ns_start, ns_end = tok_to_ns[start], tok_to_ns[end]
    if ns_start not in orig_map or ns_end not in orig_map:
        return orig_text
    return orig_text[orig_map[ns_start]:orig_map[ns_end] + 1]


def _softmax(scores: Sequence[float]) -> List[float]:
    values = np.asarray(scores, np.float64)
    values = np.exp(values - values.max())
    return (values / values.sum()).tolist()


def _candidates(feature: SquadFeature, start_logits: np.ndarray, end_logits: np.ndarray, n_best_size: int,
                max_answer_length: int) -> List[Tuple[float, int, int]]:
    """(score, start, end) of every valid span among the top starts x top ends of one feature."""
    starts = np.argsort(-start_logits, kind="stable")[:n_best_size]
    ends = np.argsort(-end_logits, kind="stable")[:n_best_size]
    s, e = np.meshgrid(starts, ends, indexing="ij")
    s, e = s.ravel(), e.ravel()
    size = len(start_logits)
    in_doc, max_context = np.zeros(size, bool), np.zeros(size, bool)
    positions = np.fromiter(feature.token_to_orig_map, np.int64, len(feature.token_to_orig_map))
    in_doc[positions] = True
    max_context[positions] = [feature.token_is_max_context.get(int(i), False) for i in positions]
    valid = in_doc[s] & in_doc[e] & max_context[s] & (e >= s) & (e - s + 1 <= max_answer_length)
    s, e = s[valid], e[valid]
    scores = start_logits[s] + end_logits[e]
    return [(float(score), int(a), int(b)) for score, a, b in zip(scores, s, e)]


def _span_text(example: SquadExample, feature: SquadFeature, start: int, end: int, do_lower_case: bool) -> str:
    pieces = " ".join(feature.tokens[start:end + 1]).replace(" ##", "").replace("##", "")
    pred_text = " ".join(pieces.strip().split())
    first, last = feature.token_to_orig_map[start], feature.token_to_orig_map[end]
    spaced = example.spaced or [True] * len(example.doc_tokens)
    orig_text = join_words(example.doc_tokens[first:last + 1], spaced[first:last + 1])
    return get_final_text(pred_text, orig_text, do_lower_case)


def write_predictions(examples: Sequence[SquadExample], features: Sequence[SquadFeature],
                      logits: Mapping[int, Tuple[np.ndarray, np.ndarray]], n_best_size: int = 20,
                      max_answer_length: int = 30, do_lower_case: bool = True, version_2_with_negative: bool = False,
                      null_score_diff_threshold: float = 0.0):
    """Predictions from ``logits`` (``unique_id`` -> (start_logits, end_logits), float [S] each).

    Returns:
        ``(predictions, nbest, null_odds)``: question id -> answer text; question id -> list of
        ``{"text", "probability", "start_logit", "end_logit"}``; question id -> null score minus best
        non-null score (v2 only, else empty).

    Raises:
        ValueError: a feature without logits (every feature must be scored: no dropped batch).
    """
    by_example: Dict[int, List[SquadFeature]] = collections.defaultdict(list)
    for feature in features:
        if feature.unique_id not in logits:
            raise ValueError(f"feature {feature.unique_id} (question {examples[feature.example_index].qas_id!r}) "
                             "has no logits: every feature must be scored")
        by_example[feature.example_index].append(feature)
    predictions: Dict[str, str] = {}
    nbest_out: Dict[str, List[dict]] = {}
    null_odds: Dict[str, float] = {}
    for index, example in enumerate(examples):
        candidates = []  # (score, feature position, start, end, start logit, end logit)
        null_score, null_logits, null_feature = float("inf"), (0.0, 0.0), 0
        for position, feature in enumerate(by_example.get(index, [])):
            start_logits, end_logits = (np.asarray(x, np.float32) for x in logits[feature.unique_id])
            if version_2_with_negative:
                score = float(start_logits[0] + end_logits[0])
                if score < null_score:
                    null_score, null_logits, null_feature = score, (float(start_logits[0]), float(end_logits[0])), \
                        position
            for score, s, e in _candidates(feature, start_logits, end_logits, n_best_size, max_answer_length):
                candidates.append((score, position, s, e, float(start_logits[s]), float(end_logits[e])))
        if version_2_with_negative and by_example.get(index):
            candidates.append((null_logits[0] + null_logits[1], null_feature, 0, 0, *null_logits))
        candidates.sort(key=lambda c: -c[0])
        nbest, seen = [], set()
        for score, position, s, e, start_logit, end_logit in candidates:
            if len(nbest) >= n_best_size:
                break
            if s > 0:
                text = _span_text(example, by_example[index][position], s, e, do_lower_case)
            else:
                text = ""
            if text in seen:
                continue
            seen.add(text)
            nbest.append({"text": text, "start_logit": start_logit, "end_logit": end_logit})
        if version_2_with_negative and "" not in seen and by_example.get(index):
            nbest.append({"text": "", "start_logit": null_logits[0], "end_logit": null_logits[1]})
        if not nbest:
            nbest.append({"text": "", "start_logit": 0.0, "end_logit": 0.0})
        for entry, probability in zip(nbest, _softmax([n["start_logit"] + n["end_logit"] for n in nbest])):
            entry["probability"] = probability
        nbest_out[example.qas_id] = nbest
        best_non_null = next((n for n in nbest if n["text"]), None)
        if not version_2_with_negative:
            predictions[example.qas_id] = nbest[0]["text"]
            continue
        if best_non_null is None:  # every candidate is the null answer
            null_odds[example.qas_id] = NO_SPAN_ODDS
            predictions[example.qas_id] = ""
            continue
        diff = null_score - best_non_null["start_logit"] - best_non_null["end_logit"]
        null_odds[example.qas_id] = diff
        predictions[example.qas_id] = "" if diff > null_score_diff_threshold else best_non_null["text"]
    return predictions, nbest_out, null_odds


__all__ = ["NO_SPAN_ODDS", "get_final_text", "write_predictions"]
