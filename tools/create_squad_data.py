"""Turn SQuAD-layout JSON into records for run_squad.py.

Writes ``OUTPUT_DIR/SPLIT.mindrecord`` (or ``.tfrecord`` + schema JSON) per split, one row per
window (feature), the question and window indexes of the evaluation split
(``dev_examples.jsonl``, ``dev_features.jsonl``) and ``dataset.json``, all at once: after an
error nothing is left behind::

    # your own files (SQuAD v1.1 layout; CMRC 2018 / DRCD are the same layout)
    python tools/create_squad_data.py --train_file train-v1.1.json --predict_file dev-v1.1.json \\
        --vocab_file vocab.txt --output_dir data/squad
    # SQuAD 2.0 data (questions without answers) needs the flag, or it is refused
    python tools/create_squad_data.py --train_file train-v2.0.json --predict_file dev-v2.0.json \\
        --version_2_with_negative true --vocab_file vocab.txt --output_dir data/squad2
    # Chinese (CMRC 2018): character-level scoring
    python tools/create_squad_data.py --train_file cmrc2018_train.json --predict_file cmrc2018_dev.json \\
        --scorer cmrc --max_seq_length 512 --vocab_file vocab_zh.txt --output_dir data/cmrc
    # built in (fetched with tools/fetch_data.py): SQuAD v1.1, a 2,000-question training subset
    python tools/create_squad_data.py --task squad_v1 --max_train_questions 2000 --vocab_file vocab.txt \\
        --output_dir data/squad_v1

Windows: ``[CLS] question [SEP] document pieces [SEP]`` of ``max_seq_length`` pieces; a long
document gives several windows whose starts are ``doc_stride`` pieces apart (google-research/bert's
meaning; HuggingFace's ``stride`` is the overlap between windows instead). Training answers whose
text is not found in the context's words are skipped and counted in the summary. Every option can
also come from a YAML file (``--config FILE``); ``--help`` lists them all.
"""
from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.config import ConfigError, SquadDataConfig, parse_config  # noqa: E402


def format_summary(info: dict, output_dir: str) -> str:
    """A few lines: feature settings, then per split the questions, windows and what was skipped."""
    version = "SQuAD 2.0 (with unanswerable questions)" if info["version_2_with_negative"] else "SQuAD 1.1"
    lines = [f"squad: {version}, scorer {info['scorer']}, max_seq_length {info['max_seq_length']}, doc_stride "
             f"{info['doc_stride']}, max_query_length {info['max_query_length']}, vocab {info['vocab_size']:,}"]
    width = max(len(s) for s in info["splits"])
    for name, split in info["splits"].items():
        extra = []
        if split.get("subset"):
            extra.append(f"subset of {split['subset']['of']:,} (seed {split['subset']['seed']})")
        if split["impossible"]:
            extra.append(f"unanswerable {split['impossible']:,}")
        if split["training"]:
            extra.append(f"skipped (answer not found) {split['skipped']:,}")
            extra.append(f"windows without the answer {split['windows_without_answer']:,}")
        lines.append(f"  {name:<{width}}  {split['questions']:>7,} questions  {split['examples']:>7,} windows  "
                     + "  ".join(extra))
    lines.append(f"wrote {output_dir} ({info['format']}): {', '.join(s['file'] for s in info['splits'].values())}, "
                 "dataset.json")
    return "\n".join(lines)


def input_files(config: SquadDataConfig, workdir: Path) -> tuple[dict, dict]:
    """Split name -> JSON file, and split name -> where it came from."""
    from src.data.squad_data import add_unanswerable
    from src.sample_data import fetch

    if config.task == "squad_v1":
        root = fetch("squad_v1")
        return ({"train": root / "train-v1.1.json", config.predict_split: root / "dev-v1.1.json"},
                {"train": "SQuAD v1.1 train-v1.1.json", config.predict_split: "SQuAD v1.1 dev-v1.1.json"})
    if config.task == "fixtures":
        path = fetch("squad_fixtures") / "squad.json"
        return {"train": path, config.predict_split: path}, {}
    if config.task == "squad_v1_unanswerable":
        source = fetch("squad_v1") / "dev-v1.1.json"
        data, counts = add_unanswerable(json.loads(source.read_text(encoding="utf-8"))["data"], config.subset_seed)
        path = workdir / "dev-v1.1-unanswerable.json"
        path.write_text(json.dumps({"version": "v1.1+unanswerable", "data": data}), encoding="utf-8")
        note = (f"SQuAD v1.1 dev-v1.1.json + {counts['unanswerable']:,} unanswerable (each question asked of another "
                f"paragraph of its article without its answers, seed {config.subset_seed})")
        return {config.predict_split: path}, {config.predict_split: note}
    files = {}
    if config.train_file:
        files["train"] = Path(config.train_file)
    if config.predict_file:
        files[config.predict_split] = Path(config.predict_file)
    return files, {}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from src.data.squad_data import SquadDataError
    from src.data.squad_records import write_squad_dataset
    from src.sample_data import FetchError
    from src.tokenization import tokenizer_for_vocab

    try:
        config = parse_config(SquadDataConfig, argv, description=__doc__)
        if config.predict_split == "train":
            raise ConfigError("predict_split cannot be 'train' (the training split's name)")
        try:
            tokenizer = tokenizer_for_vocab(config.vocab_file, config.do_lower_case)
        except ValueError as err:
            raise SquadDataError(str(err)) from None
        with tempfile.TemporaryDirectory() as workdir:
            files, sources = input_files(config, Path(workdir))
            info = write_squad_dataset(
                files, tokenizer, config.output_dir, max_seq_length=config.max_seq_length,
                doc_stride=config.doc_stride, max_query_length=config.max_query_length,
                version_2_with_negative=config.version_2_with_negative, scorer=config.scorer,
                max_train_questions=config.max_train_questions, subset_seed=config.subset_seed, fmt=config.format,
                overwrite=config.overwrite, progress=config.progress, sources=sources)
    except (ConfigError, SquadDataError, FetchError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_summary(info, config.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
