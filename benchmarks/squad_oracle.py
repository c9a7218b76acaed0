"""The ceiling that tokenization and postprocessing allow on SQuAD v1.1 dev: the gold start and end
pieces of every feature (from the training-mode features) go through postprocessing and the
official scorer in place of a model's logits.

    .venv/bin/python benchmarks/squad_oracle.py                      # full dev set, about 2 minutes
    .venv/bin/python benchmarks/squad_oracle.py --max-seq-length 256 --doc-stride 128

Prints exact match and F1 (expected above 99 F1) and the questions whose answer does not come back
exactly, grouped by kind.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def oracle_logits(features, size: int) -> dict:
    import numpy as np

    logits = {}
    for feature in features:
        start, end = np.full(size, -1e4, np.float32), np.full(size, -1e4, np.float32)
        start[feature.start_position] = end[feature.end_position] = 10.0
        logits[feature.unique_id] = (start, end)
    return logits


def kind(prediction: str, golds: list[str], tokenizer, max_answer_length: int) -> str:
    from src.squad_metrics import normalize_answer

    first = golds[0]
    if len(tokenizer.tokenize(first)) > max_answer_length:
        return f"answers longer than max_answer_length ({max_answer_length} pieces), left out by postprocessing"
    if normalize_answer(prediction) == normalize_answer(first):
        return "matches the first answer only after normalisation"
    if normalize_answer(first) in normalize_answer(prediction):
        return "longer than the answer (the answer ends or starts inside a word)"
    if normalize_answer(prediction) in normalize_answer(first):
        return "shorter than the answer"
    return "other"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-query-length", type=int, default=64)
    parser.add_argument("--max-answer-length", type=int, default=30)
    parser.add_argument("--examples", type=int, default=0, help="only the first N questions (0: all)")
    args = parser.parse_args(argv)

    from src.data.squad_data import convert_examples_to_features, read_squad_examples
    from src.sample_data import fetch
    from src.squad_metrics import evaluate_v1, exact_match
    from src.squad_postprocess import write_predictions
    from src.tokenization import FullTokenizer

    start = time.perf_counter()
    path = fetch("squad_v1") / "dev-v1.1.json"
    tokenizer = FullTokenizer(fetch("vocab_en"), do_lower_case=True)
    examples, counts = read_squad_examples(path, is_training=True)
    if args.examples:
        examples = examples[:args.examples]
    features = convert_examples_to_features(examples, tokenizer, args.max_seq_length, args.doc_stride,
                                            args.max_query_length, is_training=True)
    predictions, _, _ = write_predictions(examples, features, oracle_logits(features, args.max_seq_length),
                                          max_answer_length=args.max_answer_length)
    dataset = json.loads(path.read_text(encoding="utf-8"))["data"]
    wanted = {e.qas_id for e in examples}
    scored = [{"paragraphs": [{"qas": [qa for qa in p["qas"] if qa["id"] in wanted]} for p in a["paragraphs"]]}
              for a in dataset]
    result = evaluate_v1(scored, predictions)
    misses = collections.defaultdict(list)
    for example in examples:
        prediction = predictions[example.qas_id]
        if not max(exact_match(prediction, g) for g in example.answers):
            misses[kind(prediction, example.answers, tokenizer, args.max_answer_length)].append(
                (example.qas_id, prediction, example.answers[0]))
    print(f"SQuAD v1.1 dev oracle: {len(examples):,} questions ({counts['skipped']} skipped by the reader), "
          f"{len(features):,} features (seq {args.max_seq_length}, doc_stride {args.doc_stride}); exact match "
          f"{result['exact_match']:.2f}, F1 {result['f1']:.2f}; {time.perf_counter() - start:.0f} s")
    for name, rows in sorted(misses.items(), key=lambda kv: -len(kv[1])):
        print(f"\n{len(rows)} {name}, e.g.")
        for qid, prediction, gold in rows[:3]:
            print(f"  {qid}: predicted {prediction!r}, gold {gold!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
