"""SQuAD-layout JSON -> records for run_squad.py, and the indexes that postprocessing reads.

``OUTPUT_DIR`` (written all at once: after an error nothing is left behind):

* ``SPLIT.mindrecord`` (or ``.tfrecord`` + schema): one row per feature (window), int32 columns
  ``unique_ids`` [1], ``input_ids``, ``input_mask``, ``segment_ids`` [S], ``start_positions``,
  ``end_positions``, ``is_impossible`` [1] (positions 0, [CLS], when the answer is not in the
  window, and in every row of an evaluation split);
* for an evaluation split, ``SPLIT_examples.jsonl`` (per question: id, question, words, where the
  context had spaces, gold answers) and ``SPLIT_features.jsonl`` (per row: unique id, question,
  window, pieces, piece -> word map and max-context flags), what postprocessing and scoring need;
* ``dataset.json``: the feature settings (``max_seq_length``, ``doc_stride``,
  ``max_query_length``, ``version_2_with_negative``), the scorer and, per split, the questions,
  features, answers skipped by the reader, and the files with their sizes.

The training split is the one named ``train``; every other split is an evaluation split.
"""
from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from src.data.dataset import file_entry
from src.data.output import atomic_directory, check_output_dir, sha256_file
from src.data.records import FORMATS, Column, RecordWriter
from src.data.squad_data import (SquadDataError, SquadExample, SquadFeature, convert_examples_to_features,
                                 read_squad_examples)

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
DATASET_INFO = "dataset.json"
TASK = "squad"
SCORERS = ("squad", "cmrc")  # the official SQuAD script (v1.1 or v2.0 by the flag), or CMRC 2018's
TRAIN_COLUMNS = ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")
INPUT_COLUMNS = TRAIN_COLUMNS[:3]
CHUNK_EXAMPLES = 2048  # questions converted and written at a time


def record_columns(max_seq_length: int) -> List[Column]:
    """Every column of a SQuAD record file, in file order (all int32)."""
    lengths = {"unique_ids": 1, "input_ids": max_seq_length, "input_mask": max_seq_length,
               "segment_ids": max_seq_length, "start_positions": 1, "end_positions": 1, "is_impossible": 1}
    return [Column(name, "int32", length) for name, length in lengths.items()]


def columns(max_seq_length: int, names: Sequence[str]) -> List[Column]:
    """The columns ``names`` (in that order) of :func:`record_columns`."""
    by_name = {c.name: c for c in record_columns(max_seq_length)}
    return [by_name[n] for n in names]


def _feature_arrays(features: Sequence[SquadFeature]) -> Dict[str, np.ndarray]:
    return {
        "unique_ids": np.array([[f.unique_id] for f in features], np.int32),
        "input_ids": np.array([f.input_ids for f in features], np.int32),
        "input_mask": np.array([f.input_mask for f in features], np.int32),
        "segment_ids": np.array([f.segment_ids for f in features], np.int32),
        "start_positions": np.array([[f.start_position] for f in features], np.int32),
        "end_positions": np.array([[f.end_position] for f in features], np.int32),
        "is_impossible": np.array([[int(f.is_impossible)] for f in features], np.int32),
    }


def feature_entry(feature: SquadFeature) -> Dict[str, Any]:
    """A feature as one line of ``SPLIT_features.jsonl``: the document pieces are contiguous from
    ``doc_start`` (after ``[CLS] question [SEP]``), so the maps are lists."""
    positions = sorted(feature.token_to_orig_map)
    doc_start = positions[0] if positions else len(feature.tokens) - 1
    return {"unique_id": feature.unique_id, "example_index": feature.example_index,
            "doc_span_index": feature.doc_span_index, "tokens": feature.tokens, "doc_start": doc_start,
            "token_to_orig": [feature.token_to_orig_map[p] for p in positions],
            "max_context": [int(feature.token_is_max_context[p]) for p in positions]}


def feature_from_entry(entry: Mapping[str, Any]) -> SquadFeature:
    """The inverse of :func:`feature_entry` (without the token ids, which are in the records)."""
    start = entry["doc_start"]
    to_orig = {start + i: word for i, word in enumerate(entry["token_to_orig"])}
    max_context = {start + i: bool(flag) for i, flag in enumerate(entry["max_context"])}
    return SquadFeature(entry["unique_id"], entry["example_index"], entry["doc_span_index"], entry["tokens"],
                        to_orig, max_context, [], [], [])


def example_entry(example: SquadExample) -> Dict[str, Any]:
    return {"id": example.qas_id, "question": example.question_text, "words": example.doc_tokens,
            "spaced": [int(s) for s in example.spaced], "answers": example.answers,
            "is_impossible": example.is_impossible}


def example_from_entry(entry: Mapping[str, Any]) -> SquadExample:
    return SquadExample(entry["id"], entry["question"], entry["words"], entry["answers"],
                        [bool(s) for s in entry["spaced"]], is_impossible=entry["is_impossible"])


def read_jsonl(path: PathLike) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def gold_dataset(examples: Sequence[SquadExample]) -> List[dict]:
    """The examples' gold answers in SQuAD's ``data`` layout, for :mod:`src.squad_metrics`."""
    return [{"paragraphs": [{"qas": [{"id": e.qas_id, "answers": [{"text": t} for t in e.answers]}
                                     for e in examples]}]}]


def subset(examples: List[SquadExample], max_questions: int, seed: int) -> List[SquadExample]:
    """``max_questions`` questions drawn uniformly with ``seed``, kept in file order (0: all)."""
    if not max_questions or max_questions >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), max_questions))
    return [examples[i] for i in keep]


def write_squad_dataset(files: Mapping[str, PathLike], tokenizer: Any, output_dir: PathLike, *,
                        max_seq_length: int = 384, doc_stride: int = 128, max_query_length: int = 64,
                        version_2_with_negative: bool = False, scorer: str = "squad",
                        max_train_questions: int = 0, subset_seed: int = 12345, fmt: str = "mindrecord",
                        overwrite: bool = False, progress: bool = False,
                        sources: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Read every split of ``files`` and write its records (and indexes) and ``dataset.json`` into
    ``output_dir``, all or nothing.

    Args:
        files: split name -> SQuAD-layout JSON file; ``train`` is read for training.
        max_train_questions: train on this many questions drawn with ``subset_seed`` (0: all).
        sources: split name -> a note on where the file came from (kept in dataset.json).

    Returns:
        The content of ``dataset.json``.

    Raises:
        SquadDataError: bad input or options; the message names the file, the question id and the value.
    """
    if fmt not in FORMATS:
        raise SquadDataError(f"record format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if scorer not in SCORERS:
        raise SquadDataError(f"scorer must be one of {', '.join(SCORERS)}, got {scorer!r}")
    if scorer == "cmrc" and version_2_with_negative:
        raise SquadDataError("the CMRC 2018 scorer has no unanswerable questions: use scorer squad with "
                             "version_2_with_negative")
    if not files:
        raise SquadDataError("no input file: give train_file and/or predict_file")
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite, DATASET_INFO, SquadDataError)
    read = {}
    for split, path in files.items():
        if not Path(path).is_file():
            raise SquadDataError(f"{split} file {path} does not exist")
        read[split] = read_squad_examples(path, split == "train", version_2_with_negative)
        if not read[split][0]:
            raise SquadDataError(f"{split} file {path} has no question to use ({read[split][1]['questions']} "
                                 f"questions, {read[split][1]['skipped']} skipped)")
    first_id = 1000000000
    with atomic_directory(output_dir) as tmp:
        split_info = {}
        for split, (examples, counts) in read.items():
            training = split == "train"
            if training:
                examples = subset(examples, max_train_questions, subset_seed)
            split_info[split] = _write_split(split, examples, counts, training, tokenizer, tmp, fmt, progress,
                                             max_seq_length, doc_stride, max_query_length, first_id)
            split_info[split]["source"] = str((sources or {}).get(split) or Path(files[split]).name)
            if training and max_train_questions and max_train_questions < len(read[split][0]):
                split_info[split]["subset"] = {"questions": len(examples), "of": len(read[split][0]),
                                               "seed": subset_seed}
            first_id += split_info[split]["examples"]
        info = {
            "task": TASK,
            "version_2_with_negative": version_2_with_negative,
            "scorer": scorer,
            "max_seq_length": max_seq_length,
            "doc_stride": doc_stride,
            "max_query_length": max_query_length,
            "vocab_size": tokenizer.vocab_size,
            "vocab_sha256": sha256_file(tokenizer.vocab_file),
            "do_lower_case": tokenizer.do_lower_case,
            "format": fmt,
            "splits": split_info,
        }
        (tmp / DATASET_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return info


def _write_split(split: str, examples: List[SquadExample], counts: Dict[str, int], training: bool, tokenizer: Any,
                 out: Path, fmt: str, progress: bool, max_seq_length: int, doc_stride: int, max_query_length: int,
                 first_id: int) -> Dict[str, Any]:
    record_name = f"{split}.{fmt}"
    examples_name, features_name = f"{split}_examples.jsonl", f"{split}_features.jsonl"
    rows = answer_outside = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(examples), unit="q", desc=f"squad {split}", leave=False)
    index_files = [] if training else [open(out / examples_name, "w", encoding="utf-8", newline="\n"),
                                       open(out / features_name, "w", encoding="utf-8", newline="\n")]
    try:
        with RecordWriter(out / record_name, record_columns(max_seq_length), fmt) as writer:
            for start in range(0, len(examples), CHUNK_EXAMPLES):
                chunk = examples[start:start + CHUNK_EXAMPLES]
                features = convert_examples_to_features(chunk, tokenizer, max_seq_length, doc_stride,
                                                        max_query_length, is_training=training,
                                                        first_unique_id=first_id + rows)
                writer.write(_feature_arrays(features))
                rows += len(features)
                if training:
                    answer_outside += sum(1 for f in features if not f.is_impossible and f.start_position == 0)
                else:
                    for example in chunk:
                        index_files[0].write(json.dumps(example_entry(example), ensure_ascii=False) + "\n")
                    for feature in features:
                        feature.example_index += start
                        index_files[1].write(json.dumps(feature_entry(feature), ensure_ascii=False) + "\n")
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        for f in index_files:
            f.close()
        if bar is not None:
            bar.close()
    info: Dict[str, Any] = {
        **file_entry(out / record_name),  # file, bytes (and db_bytes): checked by the runners
        "examples": rows,  # records (features): what the loaders count
        "questions": len(examples),
        "questions_in_file": counts["questions"],
        "answered": counts["answered"],
        "impossible": counts["impossible"],
        "skipped": counts["skipped"],
        "duplicate_ids": counts["duplicate_ids"],
        "training": training,
        "has_labels": training or counts["answered"] > 0,
    }
    if training:
        info["windows_without_answer"] = answer_outside
        if counts["skipped"]:
            logger.warning("%s: %d of %d training questions skipped: their answer text is not found in the "
                           "context's words (google-research/bert's reader drops them too)", split,
                           counts["skipped"], counts["questions"])
    else:
        info["examples_file"], info["features_file"] = examples_name, features_name
    return info


def load_squad_info(path: PathLike) -> Dict[str, Any]:
    """The ``dataset.json`` of :func:`write_squad_dataset` (checked for the keys run_squad.py reads)."""
    path = Path(path)
    file = path / DATASET_INFO if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: make the SQuAD records with tools/create_squad_data.py")
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SquadDataError(f"{file} is not valid JSON: {err}") from None
    for key, tp in (("task", str), ("version_2_with_negative", bool), ("scorer", str), ("max_seq_length", int),
                    ("doc_stride", int), ("max_query_length", int), ("splits", dict)):
        if not isinstance(info.get(key), tp):
            raise SquadDataError(f"{file}: {key!r} must be {tp.__name__}, got {info.get(key)!r:.80}")
    if info["task"] != TASK:
        raise SquadDataError(f"{file} describes a {info['task']!r} dataset, not SQuAD records from "
                             "tools/create_squad_data.py")
    for split, split_info in info["splits"].items():
        keys = ("file", "examples", "training") + (() if split_info.get("training") else ("examples_file",
                                                                                        "features_file"))
        for key in keys:
            if key not in split_info:
                raise SquadDataError(f"{file}: splits.{split}.{key} is missing")
    return info


def read_split_index(data_dir: PathLike, split_info: Mapping[str, Any]) -> Tuple[List[SquadExample],
                                                                                  List[SquadFeature]]:
    """The examples and features of an evaluation split (in record order)."""
    data_dir = Path(data_dir)
    examples = [example_from_entry(e) for e in read_jsonl(data_dir / split_info["examples_file"])]
    features = [feature_from_entry(e) for e in read_jsonl(data_dir / split_info["features_file"])]
    if len(features) != split_info["examples"]:
        raise SquadDataError(f"{data_dir / split_info['features_file']} has {len(features)} features but "
                             f"dataset.json lists {split_info['examples']} records: rerun tools/create_squad_data.py "
                             "with --overwrite true")
    return examples, features


__all__ = ["DATASET_INFO", "INPUT_COLUMNS", "SCORERS", "TRAIN_COLUMNS", "columns", "feature_entry",
           "feature_from_entry", "gold_dataset", "load_squad_info", "read_split_index", "record_columns",
           "subset", "write_squad_dataset"]
