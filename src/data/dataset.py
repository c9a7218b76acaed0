"""MindSpore datasets over pretraining and fine-tuning record files (MindRecord or TFRecord).

Data mismatches are caught here, before the graph is built: a record file made for another
``seq_length``, ``max_predictions_per_seq`` or vocabulary raises ``DataMismatchError`` naming the
file and both values, instead of a shape or Gather error deep inside the network.

Data-parallel sharding is by rank: pass ``rank=get_rank(), group_size=get_group_size()`` from
``mindspore.communication`` (never the device id, which repeats across nodes).
"""
from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from src.data.records import (
    FINETUNE_COLUMN_ORDER,
    PRETRAINING_COLUMN_ORDER,
    Column,
    PathLike,
    finetune_columns,
    mindspore_schema,
    pretraining_columns,
    read_batches,
    record_columns,
    record_format,
)

logger = logging.getLogger(__name__)

FilesArg = Union[PathLike, Sequence[PathLike]]

_SUFFIXES = {"mindrecord": ("*.mindrecord",), "tfrecord": ("*.tfrecord", "*.tfrecords")}


class DataMismatchError(ValueError):
    """Record files disagree with the config (or with each other); the message names the file and both values."""


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------
def find_record_files(data_dir_or_files: FilesArg) -> List[Path]:
    """Resolves the record files of a dataset.

    Args:
        data_dir_or_files: a directory (all ``*.mindrecord`` or all ``*.tfrecord``/``*.tfrecords``
            files in it, sorted; hidden and temporary files are skipped), a glob pattern, one file,
            or a list of any of these.

    Returns:
        The files, all of one format, without duplicates.

    Raises:
        FileNotFoundError: a directory or file does not exist, a directory holds no record
            files, or a glob matches nothing.
        ValueError: MindRecord and TFRecord files mixed.
    """
    if isinstance(data_dir_or_files, (str, Path)) or not isinstance(data_dir_or_files, Sequence):
        items = [data_dir_or_files]
    else:
        items = list(data_dir_or_files)
    if not items:
        raise FileNotFoundError("no record files given (empty list)")
    files: List[Path] = []
    for item in items:
        files.extend(_resolve(Path(item)))
    unique = list(dict.fromkeys(files))
    formats = {record_format(f) for f in unique}
    if len(formats) > 1:
        mind = next(str(f) for f in unique if record_format(f) == "mindrecord")
        tf = next(str(f) for f in unique if record_format(f) == "tfrecord")
        raise ValueError(f"MindRecord and TFRecord files mixed (e.g. {mind} and {tf}): use one format")
    return unique


def _resolve(path: Path) -> List[Path]:
    text = str(path)
    if path.is_dir():
        found = {fmt: sorted(p for pattern in patterns for p in path.glob(pattern)
                             if p.is_file() and not p.name.startswith("."))
                 for fmt, patterns in _SUFFIXES.items()}
        if found["mindrecord"] and found["tfrecord"]:
            raise ValueError(f"directory {path} has both MindRecord ({len(found['mindrecord'])}) and TFRecord "
                             f"({len(found['tfrecord'])}) files: pass one format (a glob or a file list)")
        files = found["mindrecord"] or found["tfrecord"]
        if not files:
            raise FileNotFoundError(f"no *.mindrecord or *.tfrecord files in directory {path}")
        return files
    if any(ch in text for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not matches:
            raise FileNotFoundError(f"no record files match {text}")
        return matches
    if path.is_file():
        return [path]
    if not path.suffix or text.endswith(("/", "\\")):
        raise FileNotFoundError(f"data directory {path} does not exist")
    raise FileNotFoundError(f"record file {path} does not exist")


# --------------------------------------------------------------------------------------
# Manifests: what a data tool wrote, committed after its last file
# --------------------------------------------------------------------------------------
def file_entry(path: Path) -> dict:
    """The manifest entry of one record file: name, bytes and, for MindRecord, its index's bytes."""
    entry = {"file": path.name, "bytes": path.stat().st_size}
    if record_format(path) == "mindrecord":
        entry["db_bytes"] = Path(f"{path}.db").stat().st_size
    return entry


def manifest_problems(directory: Path, entries: Sequence[dict]) -> list[str]:
    """What is wrong with the files of ``entries`` (see :func:`file_entry`) in ``directory``: missing
    files or indexes, sizes that differ from the manifest. Entries without sizes (manifests of earlier
    versions) are checked for presence only."""
    problems = []
    for entry in entries:
        path = directory / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']} is missing")
            continue
        if "bytes" in entry and path.stat().st_size != entry["bytes"]:
            problems.append(f"{entry['file']} has {path.stat().st_size:,} bytes, the manifest says {entry['bytes']:,}")
        if record_format(path) == "mindrecord":
            db = Path(f"{path}.db")
            if not db.is_file():
                problems.append(f"{db.name} (the index of {entry['file']}) is missing")
            elif "db_bytes" in entry and db.stat().st_size != entry["db_bytes"]:
                problems.append(f"{db.name} has {db.stat().st_size:,} bytes, the manifest says {entry['db_bytes']:,}")
    return problems


def pretraining_record_files(data_dir_or_files: FilesArg) -> List[Path]:
    """The pretraining records a run reads, checked against their manifest.

    A directory is read through the ``*-summary.json`` manifests that tools/create_pretraining_data.py
    writes after its last shard: every listed shard must be there with its size, and no other record
    file may be. A glob, a file or a list is read as given (records from elsewhere, e.g. Google's).

    Raises:
        DataMismatchError: no manifest, or shards missing, extra or of another size (all named).
        FileNotFoundError, ValueError: see :func:`find_record_files`.
    """
    if not (isinstance(data_dir_or_files, (str, Path)) and Path(data_dir_or_files).is_dir()):
        return find_record_files(data_dir_or_files)
    directory = Path(data_dir_or_files)
    summaries = sorted(p for p in directory.glob("*-summary.json") if not p.name.startswith("."))
    present = find_record_files(directory) if not summaries else [
        p for pattern in ("*.mindrecord", "*.tfrecord", "*.tfrecords") for p in sorted(directory.glob(pattern))
        if not p.name.startswith(".")]
    suffix = present[0].suffix if present else ".mindrecord"
    rerun = (f"rerun tools/create_pretraining_data.py --output_dir {directory} --overwrite true, or pass the "
             f"files as a glob (e.g. --data_dir '{directory}/*{suffix}') to read them as they are")
    if not summaries:
        raise DataMismatchError(f"{directory} has {len(present)} record file(s) but no manifest (PREFIX-summary.json, "
                                "written by tools/create_pretraining_data.py after its last shard): the data may "
                                f"be incomplete; {rerun}")
    listed: List[Path] = []
    problems = []
    for summary in summaries:
        try:
            shards = json.loads(summary.read_text(encoding="utf-8"))["shards"]
        except (OSError, ValueError, KeyError) as err:
            raise DataMismatchError(f"manifest {summary} is not readable ({err}); {rerun}") from None
        problems += [f"{summary.name}: {p}" for p in manifest_problems(directory, shards)]
        listed += [directory / s["file"] for s in shards]
    extra = sorted(set(present) - set(listed))
    problems += [f"{p.name} is not in any manifest" for p in extra]
    if problems:
        shown = problems[:10] + [f"... and {len(problems) - 10} more"] * (len(problems) > 10)
        raise DataMismatchError(f"the records in {directory} do not match their manifest:\n  " + "\n  ".join(shown)
                                + f"\nthe data tool was interrupted or another one wrote here; {rerun}")
    return sorted(listed)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def check_columns(files: Sequence[PathLike], expected: Sequence[Column],
                  names: Optional[dict] = None) -> None:
    """Checks that every file has the expected columns with the expected lengths.

    Args:
        files: record files.
        expected: the columns the config implies.
        names: column name -> the config key named in the error (e.g. ``"seq_length"``); columns
            not listed are named by themselves.

    Raises:
        DataMismatchError: a column is missing or has another length.
    """
    names = names or {}
    first_of_key: dict = {}
    for col in expected:
        first_of_key.setdefault(names.get(col.name, col.name), col.name)
    for f in files:
        have = {c.name: c for c in record_columns(f)}
        missing = [c.name for c in expected if c.name not in have]
        if missing:
            raise DataMismatchError(f"{f} has no column(s) {', '.join(missing)} (it has {', '.join(have)}); "
                                    f"expected {', '.join(c.name for c in expected)}")
        for col in expected:
            actual = have[col.name].length
            if actual != col.length:
                key = names.get(col.name)
                if key is None:
                    raise DataMismatchError(f"length of {col.name} {actual} in {f} but {col.length} in the config")
                detail = "" if first_of_key[key] == col.name else f" (column {col.name})"
                raise DataMismatchError(f"{key} {actual} in {f} but {col.length} in the config{detail}")


def check_token_ids(files: Sequence[PathLike], vocab_size: Optional[int], columns: Sequence[str] = ("input_ids",),
                    max_rows_per_file: Optional[int] = 1000, seq_length: Optional[int] = None) -> None:
    """Checks token ids on the first rows of each file (one read per file).

    Args:
        files: record files.
        vocab_size: ids in ``columns`` must be in ``[0, vocab_size)``; None skips this check.
        columns: the token id columns.
        max_rows_per_file: rows checked per file (None: all).
        seq_length: if given, also checks ``0 <= masked_lm_positions < seq_length``.

    Raises:
        DataMismatchError: e.g. ``token id 30000 in data/x.mindrecord (input_ids, row 17) is >=
            vocab_size 21128 of the config``.
    """
    id_columns = list(columns) if vocab_size is not None else []
    to_read = id_columns + (["masked_lm_positions"] if seq_length is not None else [])
    if not to_read:
        return
    for f in files:
        row0 = 0
        for batch in read_batches(f, to_read, batch_size=1024, max_rows=max_rows_per_file):
            for name in id_columns:
                ids = batch[name]
                bad = np.nonzero((ids >= vocab_size) | (ids < 0))
                if bad[0].size:
                    row, col = int(bad[0][0]), int(bad[1][0])
                    value = int(ids[row, col])
                    where = f"{f} ({name}, row {row0 + row})"
                    if value < 0:
                        raise DataMismatchError(f"token id {value} in {where} is negative")
                    raise DataMismatchError(f"token id {value} in {where} is >= vocab_size {vocab_size} of the config")
            if seq_length is not None:
                pos = batch["masked_lm_positions"]
                bad = np.nonzero((pos >= seq_length) | (pos < 0))
                if bad[0].size:
                    row = int(bad[0][0])
                    raise DataMismatchError(f"masked_lm_positions value {int(pos[row, bad[1][0]])} in {f} "
                                            f"(row {row0 + row}) is outside [0, seq_length {seq_length})")
            row0 += len(batch[to_read[0]])


def validate_pretraining_files(files: FilesArg, seq_length: int, max_predictions_per_seq: int,
                               vocab_size: Optional[int], max_rows_per_file: Optional[int] = 1000) -> None:
    """Checks pretraining record files against the config before training.

    Column lengths are checked in every file; token ids (``input_ids``, ``masked_lm_ids``) and
    ``masked_lm_positions`` on the first ``max_rows_per_file`` rows of each file (None: all rows).

    Args:
        files: anything ``find_record_files`` accepts.
        seq_length: the model config's ``seq_length``.
        max_predictions_per_seq: the config's ``max_predictions_per_seq``.
        vocab_size: the model config's ``vocab_size``; None skips the token id check.
        max_rows_per_file: rows per file whose values are checked.

    Raises:
        DataMismatchError: e.g. ``seq_length 256 in data/x.mindrecord but 128 in the config``.
    """
    files = find_record_files(files)
    names = {"input_ids": "seq_length", "input_mask": "seq_length", "segment_ids": "seq_length",
             "masked_lm_positions": "max_predictions_per_seq", "masked_lm_ids": "max_predictions_per_seq",
             "masked_lm_weights": "max_predictions_per_seq"}
    check_columns(files, pretraining_columns(seq_length, max_predictions_per_seq), names)
    if max_rows_per_file is not None and max_rows_per_file <= 0:
        return
    check_token_ids(files, vocab_size, ("input_ids", "masked_lm_ids"), max_rows_per_file, seq_length=seq_length)


# --------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------
def _check_args(batch_size: int, rank: int, group_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if group_size < 1 or not 0 <= rank < group_size:
        raise ValueError(f"rank {rank} is not valid for group_size {group_size} (need 0 <= rank < group_size)")


def _build(files: List[Path], columns: Sequence[Column], batch_size: int, *, rank: int, group_size: int,
           shuffle: bool, seed: Optional[int], num_parallel_workers: Optional[int],
           drop_remainder: bool) -> Any:
    import mindspore.dataset as ds
    import mindspore.dataset.transforms as transforms
    from mindspore import dtype as mstype

    _check_args(batch_size, rank, group_size)
    if num_parallel_workers is not None:  # MindSpore rejects more workers than cores
        num_parallel_workers = max(1, min(num_parallel_workers, os.cpu_count() or 1))
    if seed is not None:
        ds.config.set_seed(seed)  # the only seed MindSpore's file readers take: it is process-global
    names = [c.name for c in columns]
    shard = {"num_shards": group_size, "shard_id": rank} if group_size > 1 else {}
    fmt = record_format(files[0])
    paths = [str(f) for f in files]
    if fmt == "mindrecord":
        dataset = ds.MindDataset(paths, columns_list=names, shuffle=shuffle,
                                 num_parallel_workers=num_parallel_workers, **shard)
        stored = {c.name: c.dtype for c in record_columns(files[0])}
        to_cast = [c.name for c in columns if c.is_int and stored.get(c.name) != "int32"]
    else:
        # Several TFRecord reader workers interleave the rows of different files: without
        # shuffling, one worker keeps the file order (what evaluation expects).
        dataset = ds.TFRecordDataset(paths, mindspore_schema(columns), columns_list=names,
                                     shuffle=ds.Shuffle.GLOBAL if shuffle else False,
                                     num_parallel_workers=num_parallel_workers if shuffle else 1,
                                     shard_equal_rows=True, **shard)
        to_cast = [c.name for c in columns if c.is_int]
    cast = transforms.TypeCast(mstype.int32)
    for name in to_cast:
        dataset = dataset.map(operations=cast, input_columns=name, num_parallel_workers=num_parallel_workers)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if drop_remainder and dataset.get_dataset_size() == 0:
        raise DataMismatchError(f"{len(files)} record file(s) starting with {files[0]} give rank {rank} of "
                                f"{group_size} fewer rows than batch_size {batch_size}: no batch at all with "
                                f"drop_remainder=True")
    return dataset


def create_pretraining_dataset(files: FilesArg, batch_size: int, seq_length: int, max_predictions_per_seq: int,
                               vocab_size: Optional[int], *, rank: int = 0, group_size: int = 1,
                               shuffle: bool = True, seed: Optional[int] = None, num_parallel_workers: int = 2,
                               drop_remainder: bool = True, validate: bool = True) -> Any:
    """The pretraining dataset: batches of the zoo's seven columns, all int32 except the weights.

    Args:
        files: a directory, glob, file or list (see ``find_record_files``); MindRecord or TFRecord.
        batch_size: rows per batch (per rank).
        seq_length, max_predictions_per_seq, vocab_size: from the config; checked against the files
            (``validate_pretraining_files``) unless ``validate`` is False.
        rank, group_size: this process's data-parallel rank and the number of ranks. Each rank
            reads its own shard. MindRecord shards are equal-sized: when the row count does not
            divide, some rows are repeated; TFRecord shards are equalised too (``shard_equal_rows``).
        shuffle: shuffle rows (MindRecord: globally; TFRecord: files and rows, ``Shuffle.GLOBAL``).
            Without shuffling, rows come in file order (files in the order given).
        seed: if given, sets MindSpore's global dataset seed (``mindspore.dataset.config.set_seed``).
        num_parallel_workers: reader and map workers.
        drop_remainder: drop the last partial batch (training).
        validate: check the files against the config first.

    Returns:
        A ``mindspore.dataset.Dataset`` with columns ``input_ids``, ``input_mask``, ``segment_ids``
        int32 [B, S], ``next_sentence_labels`` int32 [B, 1], ``masked_lm_positions``,
        ``masked_lm_ids`` int32 [B, P], ``masked_lm_weights`` float32 [B, P], in this order.

    Raises:
        FileNotFoundError: see ``find_record_files``.
        DataMismatchError: the files disagree with the config, or give this rank no batch.
    """
    _check_args(batch_size, rank, group_size)
    files = find_record_files(files)
    if validate:
        validate_pretraining_files(files, seq_length, max_predictions_per_seq, vocab_size)
    by_name = {c.name: c for c in pretraining_columns(seq_length, max_predictions_per_seq)}
    columns = [by_name[n] for n in PRETRAINING_COLUMN_ORDER]
    return _build(files, columns, batch_size, rank=rank, group_size=group_size, shuffle=shuffle, seed=seed,
                  num_parallel_workers=num_parallel_workers, drop_remainder=drop_remainder)


def create_finetune_dataset(files: FilesArg, batch_size: int, seq_length: int, *, label_length: int = 1,
                            columns: Optional[Sequence[Column]] = None, rank: int = 0, group_size: int = 1,
                            shuffle: bool = True, seed: Optional[int] = None, num_parallel_workers: int = 2,
                            drop_remainder: bool = True, vocab_size: Optional[int] = None,
                            validate: bool = True) -> Any:
    """A fine-tuning dataset: ``input_ids``, ``input_mask``, ``segment_ids`` int32 [B, S], ``label_ids``.

    For evaluation pass ``shuffle=False, drop_remainder=False`` so that the last partial batch is
    kept (every example is scored).

    Args:
        files: a directory, glob, file or list (see ``find_record_files``).
        batch_size: rows per batch.
        seq_length: the config's ``seq_length``; checked against the files.
        label_length: length of ``label_ids``: 1 (classification, gives [B, 1]) or S (NER).
        columns: other columns to read instead of the default four (e.g. SQuAD's); see
            ``finetune_columns``.
        rank, group_size, shuffle, seed, num_parallel_workers: as in ``create_pretraining_dataset``.
        drop_remainder: drop the last partial batch; False for evaluation.
        vocab_size: if given, ``input_ids`` are checked to be below it (first 1000 rows per file).
        validate: check column lengths (and ids) first.

    Raises:
        DataMismatchError: e.g. ``seq_length 256 in data/dev.mindrecord but 128 in the config``.
    """
    _check_args(batch_size, rank, group_size)
    files = find_record_files(files)
    if columns is None:
        by_name = {c.name: c for c in finetune_columns(seq_length, label_length=label_length)}
        columns = [by_name[n] for n in FINETUNE_COLUMN_ORDER]
    columns = list(columns)
    if validate:
        names = {c.name: "seq_length" for c in columns if c.name in ("input_ids", "input_mask", "segment_ids")}
        if label_length != seq_length:
            names["label_ids"] = "label_length"
        check_columns(files, columns, names)
        if vocab_size is not None:
            check_token_ids(files, vocab_size, ("input_ids",))
    return _build(files, columns, batch_size, rank=rank, group_size=group_size, shuffle=shuffle, seed=seed,
                  num_parallel_workers=num_parallel_workers, drop_remainder=drop_remainder)


__all__ = [
    "DataMismatchError", "check_columns", "check_token_ids", "create_finetune_dataset", "file_entry",
    "manifest_problems", "pretraining_record_files",
    "create_pretraining_dataset", "find_record_files", "validate_pretraining_files",
]
