"""NER metrics: entity-level P/R/F1 (seqeval-compatible), token accuracy, CLUENER2020's score.

=======================  ==========================================  ===============================
function                 what it counts                              reference
=======================  ==========================================  ===============================
:func:`entity_scores`    exact (type, start, end) chunk matches      seqeval 1.2.2 ``classification_
                                                                     report`` / ``f1_score`` ...
:func:`token_accuracy`   positions whose tag equals the gold tag     seqeval ``accuracy_score``
:func:`cluener_scores`   per line and type, sets of entity strings   CLUENER2020's scoring script
=======================  ==========================================  ===============================

Entity-level scores (tests compare with seqeval within 1e-12):

* ``mode="default"`` is seqeval's default (conlleval) mode: chunks as :func:`src.tagging.get_chunks`
  reads them without ``strict``. IOB2, IOB1 and IOBES give seqeval's numbers on the same tags.
  seqeval knows no L, U or M prefix, so BILOU and BMES are scored as the same sequence renamed to
  IOBES (L->E, U->S, M->I), which is what seqeval gives for the renamed tags.
* ``mode="strict"`` is seqeval's strict mode with ``scheme=IOB2 / IOB1 / IOBES / BILOU``; BMES is
  scored as IOBES after M->I (seqeval has no BMES). It needs ``scheme``: seqeval's ``f1_score``
  silently falls back to default mode without one (and its ``classification_report`` guesses a
  scheme from the gold tags); here that is an error.
* Types are read through :func:`src.tagging.split_tag`, so ``B_PER`` is type ``PER`` (seqeval
  would call it ``_PER``) and a bare prefix ``B`` is type ``""`` (seqeval: ``_``).
* Zero division gives 0.0, as seqeval with its default ``zero_division="warn"`` (which also warns;
  nothing is warned here): precision 0 with no predicted entity, recall 0 with no gold entity, F1 0
  when precision + recall is 0. So a corpus without any entity, predicted or gold, scores 0, not 1.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

from src.tagging import canonical_scheme, get_chunks

__all__ = ["CLUENER_TYPES", "cluener_scores", "entity_scores", "entity_strings", "token_accuracy"]

CLUENER_TYPES = ("address", "book", "company", "game", "government", "movie", "name", "organization",
                 "position", "scene")
"""The 10 entity types of CLUENER2020, over which its macro F1 is averaged."""


def _check_pairs(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    """Same number of sentences, each of the same length, or a ValueError naming the first misfit."""
    for name, corpus in (("gold", gold), ("pred", pred)):
        if isinstance(corpus, str) or any(isinstance(s, str) for s in corpus):
            raise ValueError(f"{name} must be a list of sentences, each a list of tags; "
                             f"got a str where a sentence belongs (wrap one sentence as [tags])")
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences but pred has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} tags but pred has {len(p)}")


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall, F1 with 0.0 for each zero denominator (seqeval's zero_division='warn')."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _entities(corpus: Sequence[Sequence[str]], scheme: Optional[str], strict: bool) -> dict[str, set]:
    """type -> {(sentence, start, end)} over the corpus."""
    by_type: dict[str, set] = {}
    for i, tags in enumerate(corpus):
        for type_, start, end in get_chunks(tags, scheme, strict=strict):
            by_type.setdefault(type_, set()).add((i, start, end))
    return by_type


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *,
                  mode: str = "default", scheme: Optional[str] = None) -> dict:
    """Micro and per-type entity-level precision, recall and F1 (exact type and span match).

    Args:
        gold: per sentence, its [S] gold tags (``-`` or ``_`` spelling).
        pred: per sentence, its [S] predicted tags.
        mode: ``"default"`` (conlleval) or ``"strict"`` (chunks that break the scheme are dropped).
        scheme: name or alias from :data:`src.tagging.SCHEMES`; optional in default mode (where it
            only checks that every tag belongs to it), required in strict mode.

    Returns:
        ``{"precision", "recall", "f1"}`` micro-averaged floats; ``"tp"``, ``"n_pred"``,
        ``"n_gold"`` entity counts; ``"per_type"``: ``{type: {"precision", "recall", "f1",
        "support"}}`` over the types found in gold or pred, sorted, ``support`` = gold count.
        These are seqeval's ``precision_score`` / ``recall_score`` / ``f1_score`` and the rows of
        ``classification_report(output_dict=True)`` (``f1`` there is ``f1-score``).

    Raises:
        ValueError: unknown mode or scheme, strict mode without a scheme, sentence counts or
            lengths that differ (naming the sentence), a tag that fits no scheme or not ``scheme``.
    """
    if mode not in ("default", "strict"):
        raise ValueError(f"mode must be 'default' or 'strict', got {mode!r}")
    scheme = None if scheme is None else canonical_scheme(scheme)
    if mode == "strict" and scheme is None:
        raise ValueError("mode='strict' needs a scheme (IOB2, IOB1, IOBES, BILOU or BMES); seqeval "
                         "silently scores in default mode without one, this refuses to")
    _check_pairs(gold, pred)
    strict = mode == "strict"
    gold_by_type = _entities(gold, scheme, strict)
    pred_by_type = _entities(pred, scheme, strict)
    per_type, tp, n_pred, n_gold = {}, 0, 0, 0
    for type_ in sorted(set(gold_by_type) | set(pred_by_type)):
        g, p = gold_by_type.get(type_, set()), pred_by_type.get(type_, set())
        t = len(g & p)
        precision, recall, f1 = _prf(t, len(p), len(g))
        per_type[type_] = {"precision": precision, "recall": recall, "f1": f1, "support": len(g)}
        tp, n_pred, n_gold = tp + t, n_pred + len(p), n_gold + len(g)
    precision, recall, f1 = _prf(tp, n_pred, n_gold)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "n_pred": n_pred,
            "n_gold": n_gold, "per_type": per_type}


def token_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Token accuracy: the share of positions whose predicted tag string equals the gold one,
    over all positions of all sentences (``O`` included; seqeval's ``accuracy_score``).

    Raises:
        ValueError: sentence counts or lengths that differ, or no positions at all.
    """
    _check_pairs(gold, pred)
    total = sum(len(g) for g in gold)
    if total == 0:
        raise ValueError(f"token accuracy of {len(gold)} sentences without any tag is undefined")
    return sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p)) / total


def entity_strings(tokens: Sequence[str], tags: Sequence[str], scheme: Optional[str] = None, *,
                   sep: str = "") -> dict[str, set[str]]:
    """One sentence's entities as CLUENER compares them: type -> set of entity strings.

    Args:
        tokens: [S] tokens (a ``str`` is read as its characters, CLUENER's one token per character).
        tags: [S] tags, read in default mode (see :func:`src.tagging.get_chunks`).
        scheme: optional scheme, as for :func:`src.tagging.get_chunks`.
        sep: joins the tokens of an entity.
    """
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    out: dict[str, set[str]] = {}
    for type_, start, end in get_chunks(tags, scheme):
        out.setdefault(type_, set()).add(sep.join(tokens[start:end]))
    return out


def cluener_scores(gold_entities: Sequence[Mapping[str, Iterable[str]]],
                   pred_entities: Sequence[Mapping[str, Iterable[str]]],
                   types: Sequence[str] = CLUENER_TYPES) -> dict:
    """CLUENER2020's official score: per type P/R/F1 over entity strings, macro F1 over ``types``.

    For every line and type the *sets* of entity strings are compared (the official script reads
    the keys of ``label[type]``): a predicted string also in gold is a true positive, one not in
    gold a false positive, a gold string not predicted a false negative; a string that occurs
    twice in a line counts once, and its position is not checked. Counts are summed over lines
    per type; F1 = 2PR / (P + R); the macro F1 is the plain mean over ``types``. Where the official
    script divides by zero (a type never predicted or never in gold) this gives 0.0.

    Args:
        gold_entities: per line, type -> entity strings; a CLUENER JSON line's ``"label"`` dict
            (type -> {string: spans}) can be passed as it is. Missing types have no entities.
        pred_entities: per line, the same for the predictions.
        types: the types to score and average over (default the 10 CLUENER types).

    Returns:
        ``{"macro_f1": float, "per_type": {type: {"precision", "recall", "f1", "tp", "n_pred",
        "n_gold"}}}``, ``per_type`` in the order of ``types``.

    Raises:
        ValueError: line counts that differ, empty or repeated ``types``, or a type in the input
            that is not in ``types`` (the official script would silently ignore it).
    """
    types = list(types)
    if not types or len(set(types)) != len(types):
        raise ValueError(f"types must be non-empty and without repeats, got {types!r}")
    if len(gold_entities) != len(pred_entities):
        raise ValueError(f"gold has {len(gold_entities)} lines but pred has {len(pred_entities)}")
    known = set(types)
    counts = {t: [0, 0, 0] for t in types}  # tp, n_pred, n_gold
    for i, (gold, pred) in enumerate(zip(gold_entities, pred_entities)):
        for name, line in (("gold", gold), ("pred", pred)):
            unknown = set(line) - known
            if unknown:
                raise ValueError(f"line {i}: {name} has type {sorted(unknown)[0]!r}, not one of {types}")
        for t in types:
            g, p = set(gold.get(t, ())), set(pred.get(t, ()))
            c = counts[t]
            c[0], c[1], c[2] = c[0] + len(g & p), c[1] + len(p), c[2] + len(g)
    per_type = {}
    for t, (tp, n_pred, n_gold) in counts.items():
        precision, recall, f1 = _prf(tp, n_pred, n_gold)
        per_type[t] = {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "n_pred": n_pred,
                       "n_gold": n_gold}
    return {"macro_f1": sum(v["f1"] for v in per_type.values()) / len(types), "per_type": per_type}
