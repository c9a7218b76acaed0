"""Turn NER files into records for run_ner.py.

Writes ``OUTPUT_DIR/SPLIT.mindrecord`` (or ``.tfrecord`` + schema JSON) for every split found,
``SPLIT_sentences.jsonl`` (each sentence's tokens, tags and the record rows it spans) and
``dataset.json`` (labels with O = 0, tag scheme, per-split counts of sentences, entities, split
sentences and invalid tag sequences), all at once: after an error nothing is left behind::

    # CoNLL-style 'token TAG' files: DATA_DIR/train.txt, dev.txt, test.txt (any scheme, to IOB2)
    python tools/create_ner_data.py --task conll --data_dir my_ner --vocab_file vocab.txt --output_dir data/ner
    # CoNLL-2003 ('token POS chunk TAG', IOB1) as IOBES
    python tools/create_ner_data.py --task conll --data_dir conll2003 --tag_column 3 --source_scheme IOB1 \\
        --scheme IOBES --vocab_file vocab.txt --output_dir data/conll03
    # CLUENER2020 (train.json, dev.json, test.json)
    python tools/create_ner_data.py --task cluener --data_dir cluener_public --vocab_file vocab_zh.txt \\
        --output_dir data/cluener
    # built in, fetched with tools/fetch_data.py: MSRA (BMES, to IOB2), People's Daily 1998-01
    python tools/create_ner_data.py --task msra --vocab_file vocab_zh.txt --output_dir data/msra
    python tools/create_ner_data.py --task peoples_daily --vocab_file vocab_zh.txt --output_dir data/pd98

Every option can also come from a YAML file (``--config FILE``); ``--help`` lists them all.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.config import ConfigError, NerDataConfig, parse_config  # noqa: E402


def format_summary(info: dict, output_dir: str) -> str:
    """A few lines: labels and scheme, then per split the sentences, rows, entities and problems."""
    lines = [f"ner ({info['input_format']}): {len(info['labels'])} labels in {info['scheme']} (read as "
             f"{info['source_scheme']}), max_seq_length {info['max_seq_length']}, vocab {info['vocab_size']:,}"]
    width = max(len(s) for s in info["splits"])
    for name, split in info["splits"].items():
        entities = "  ".join(f"{k} {v:,}" for k, v in split.get("entities", {}).items()) or "no labels"
        invalid = f"  invalid sequences {split['invalid_sentences']:,}" if split.get("invalid_sentences") else ""
        lines.append(f"  {name:<{width}}  {split['sentences']:>8,} sentences  {split['examples']:>8,} rows  "
                     f"split {split['split_sentences']:,}  {entities}{invalid}")
    lines.append(f"wrote {output_dir} ({info['format']}): {', '.join(s['file'] for s in info['splits'].values())}, "
                 "dataset.json")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from src.data.ner_data import NerDataError, NerTask, read_labels_file, split_files, write_ner_dataset
    from src.sample_data import FetchError
    from src.tokenization import tokenizer_for_vocab

    try:
        config = parse_config(NerDataConfig, argv, description=__doc__)
        files = split_files(config.task, config.data_dir or None,
                            {"train": config.train_file, "dev": config.dev_file, "test": config.test_file})
        labels = read_labels_file(config.labels_file) if config.labels_file else list(config.labels)
        spec = NerTask(config.task, files, config.token_column, config.tag_column, config.source_scheme,
                       config.scheme, labels)
        try:
            tokenizer = tokenizer_for_vocab(config.vocab_file, config.do_lower_case)
        except ValueError as err:
            raise NerDataError(str(err)) from None
        info = write_ner_dataset(spec, tokenizer, config.output_dir, config.max_seq_length, fmt=config.format,
                                 overwrite=config.overwrite, progress=config.progress)
    except (ConfigError, NerDataError, FetchError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_summary(info, config.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
