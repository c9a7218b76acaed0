"""Score a prediction file against a SQuAD-layout data file with the official arithmetic
(src/squad_metrics.py), as ``evaluate-v1.1.py``, ``evaluate-v2.0.py`` or ``cmrc2018_evaluate.py``::

    python tools/evaluate_squad.py --data_file dev-v1.1.json --prediction_file output/squad/predictions_dev.json
    python tools/evaluate_squad.py --data_file dev-v2.0.json --prediction_file predictions_dev.json \\
        --version 2 --null_odds_file null_odds_dev.json
    python tools/evaluate_squad.py --data_file cmrc2018_dev.json --prediction_file predictions_dev.json --version cmrc

Prints the scores as JSON. A prediction file that lacks questions of the data file is an error
naming them (the official v1.1 script scores them 0, the v2.0 script leaves them out: pass
``--allow_missing`` for that).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class EvaluationError(ValueError):
    """A data or prediction file that cannot be scored."""


def _load(path: str, what: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EvaluationError(f"{what} {path} is not a readable JSON file: {err}") from None


def evaluate_files(data_file: str, prediction_file: str, version: str = "1", null_odds_file: str = "",
                   allow_missing: bool = False) -> dict:
    """The scores of ``prediction_file`` (question id -> answer text) on ``data_file``.

    Raises:
        EvaluationError: a file is unreadable or not in the expected layout, a prediction is not a
            string, or (without ``allow_missing``) questions have no prediction.
    """
    from src.squad_metrics import evaluate_cmrc, evaluate_v1, evaluate_v2, questions

    data = _load(data_file, "data file")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise EvaluationError(f"data file {data_file} has no 'data' list: not a SQuAD-layout file")
    predictions = _load(prediction_file, "prediction file")
    if not isinstance(predictions, dict):
        raise EvaluationError(f"prediction file {prediction_file} must map question ids to answer texts, got a "
                              f"{type(predictions).__name__}")
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise EvaluationError(f"prediction file {prediction_file}: question {qid!r} has a {type(text).__name__} "
                                  f"answer {text!r:.60}, not a string")
    try:
        ids = [str(qa["id"]).strip() if version == "cmrc" else qa["id"] for qa in questions(data["data"])]
    except (KeyError, TypeError) as err:
        raise EvaluationError(f"data file {data_file} is not in SQuAD layout (data[].paragraphs[].qas[].id): "
                              f"missing {err}") from None
    missing = [q for q in dict.fromkeys(ids) if q not in predictions]
    if missing and not allow_missing:
        raise EvaluationError(f"prediction file {prediction_file} has no answer for {len(missing)} of {len(set(ids))} "
                              f"questions of {data_file}, e.g. {', '.join(repr(q) for q in missing[:5])} (pass "
                              "--allow_missing to score them as the official scripts do)")
    if version == "cmrc":
        return evaluate_cmrc(data["data"], predictions)
    if version == "2":
        null_odds = _load(null_odds_file, "null odds file") if null_odds_file else None
        return evaluate_v2(data["data"], predictions, null_odds)
    return evaluate_v1(data["data"], predictions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", required=True, help="SQuAD-layout JSON with the gold answers")
    parser.add_argument("--prediction_file", required=True, help="JSON: question id -> answer text")
    parser.add_argument("--version", choices=("1", "2", "cmrc"), default="1",
                        help="1: SQuAD v1.1, 2: SQuAD v2.0 (HasAns/NoAns), cmrc: CMRC 2018 (character level)")
    parser.add_argument("--null_odds_file", default="", help="v2: null_odds_SPLIT.json, for the best thresholds")
    parser.add_argument("--allow_missing", action="store_true",
                        help="score questions without a prediction as the official scripts do")
    args = parser.parse_args(argv)
    try:
        scores = evaluate_files(args.data_file, args.prediction_file, args.version, args.null_odds_file,
                                args.allow_missing)
    except EvaluationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(scores, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
