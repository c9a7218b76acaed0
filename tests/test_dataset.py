"""Tests for src/data/dataset.py: finding record files, validation errors, the MindSpore loaders.

Synthetic records in tmp_path, both formats: column order, dtypes, batch counts, sharding by rank,
and each mismatch between data and config raising a message that names the file and both values.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from src.data import records as rec
from src.data.dataset import (
    DataMismatchError,
    create_finetune_dataset,
    create_pretraining_dataset,
    find_record_files,
    validate_pretraining_files,
)
from src.data.records import Column, RecordWriter, finetune_columns, pretraining_columns

S, P, V = 16, 4, 99
ORDER = ["input_ids", "input_mask", "segment_ids", "next_sentence_labels",
         "masked_lm_positions", "masked_lm_ids", "masked_lm_weights"]


def pretraining_arrays(n: int, start: int = 0, seq: int = S, pred: int = P) -> dict:
    """Rows whose first input id is a unique row number (start + i), to track rows through shards."""
    rng = np.random.default_rng(start)
    ids = rng.integers(5, V, (n, seq))
    ids[:, 0] = np.arange(start, start + n) % V
    ids[:, 1] = np.arange(start, start + n) // V
    return {"input_ids": ids, "input_mask": np.ones((n, seq)), "segment_ids": np.zeros((n, seq)),
            "next_sentence_labels": rng.integers(0, 2, (n, 1)),
            "masked_lm_positions": rng.integers(0, seq, (n, pred)), "masked_lm_ids": rng.integers(0, V, (n, pred)),
            "masked_lm_weights": np.ones((n, pred), np.float32)}


def row_key(ids: np.ndarray) -> int:
    return int(ids[1]) * V + int(ids[0])


def write(path: Path, data: dict, columns=None) -> Path:
    columns = columns or pretraining_columns(data["input_ids"].shape[1], data["masked_lm_ids"].shape[1])
    with RecordWriter(path, columns) as writer:
        writer.write(data)
    return path


@pytest.fixture(params=rec.FORMATS)
def fmt(request):
    if request.param == "tfrecord":
        pytest.importorskip("tensorflow")
    return request.param


@pytest.fixture()
def two_files(tmp_path, fmt):
    """Two files: 24 and 16 rows (40 in all), row numbers 0..39."""
    write(tmp_path / f"b.{fmt}", pretraining_arrays(16, start=24))
    write(tmp_path / f"a.{fmt}", pretraining_arrays(24, start=0))
    return tmp_path


# --------------------------------------------------------------------------------------
# find_record_files
# --------------------------------------------------------------------------------------
def test_find_record_files(tmp_path):
    for name in ("b.mindrecord", "a.mindrecord"):
        write(tmp_path / name, pretraining_arrays(2))
    (tmp_path / ".c.mindrecord.tmp-x").mkdir()  # a killed writer's leftovers are ignored
    expected = [tmp_path / "a.mindrecord", tmp_path / "b.mindrecord"]
    assert find_record_files(tmp_path) == expected
    assert find_record_files(str(tmp_path / "*.mindrecord")) == expected
    assert find_record_files(tmp_path / "b.mindrecord") == [tmp_path / "b.mindrecord"]
    assert find_record_files([tmp_path / "b.mindrecord", str(tmp_path)]) == [expected[1], expected[0]]


def test_find_record_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"data directory {re.escape(str(tmp_path / 'nope'))} does not exist"):
        find_record_files(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="record file .*x.mindrecord does not exist"):
        find_record_files(tmp_path / "x.mindrecord")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no records here")
    with pytest.raises(FileNotFoundError, match=r"no \*.mindrecord or \*.tfrecord files in directory .*empty"):
        find_record_files(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no record files match"):
        find_record_files(str(tmp_path / "*.tfrecord"))
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.tfrecord").write_bytes(b"")
    write(tmp_path / "mixed" / "b.mindrecord", pretraining_arrays(1))
    with pytest.raises(ValueError, match="has both MindRecord"):
        find_record_files(tmp_path / "mixed")
    with pytest.raises(ValueError, match="mixed"):
        find_record_files([tmp_path / "mixed" / "a.tfrecord", tmp_path / "mixed" / "b.mindrecord"])


# --------------------------------------------------------------------------------------
# Pretraining dataset
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("drop_remainder, batches", [(True, 2), (False, 3)])
def test_pretraining_dataset(two_files, fmt, drop_remainder, batches):
    dataset = create_pretraining_dataset(two_files, batch_size=16, seq_length=S, max_predictions_per_seq=P,
                                         vocab_size=V, shuffle=False, drop_remainder=drop_remainder)
    assert dataset.get_col_names() == ORDER
    assert dataset.get_dataset_size() == batches
    got = list(dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert len(got) == batches
    first = got[0]
    assert [a.shape for a in first] == [(16, S), (16, S), (16, S), (16, 1), (16, P), (16, P), (16, P)]
    assert [a.dtype for a in first] == [np.int32] * 6 + [np.float32]
    if not drop_remainder:
        assert got[-1][0].shape == (8, S)  # 40 rows: the last partial batch is kept
        rows = sorted(row_key(r) for batch in got for r in batch[0])
        assert rows == list(range(40))
    # Values survive the trip: file a (rows 0..23) comes first without shuffling.
    expected = pretraining_arrays(24, start=0)
    np.testing.assert_array_equal(first[0], expected["input_ids"][:16])
    np.testing.assert_array_equal(first[5], expected["masked_lm_ids"][:16])


def test_pretraining_dataset_shuffles(two_files):
    dataset = create_pretraining_dataset(two_files, batch_size=8, seq_length=S, max_predictions_per_seq=P,
                                         vocab_size=V, seed=1, drop_remainder=False)
    rows = [row_key(r) for batch in dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)
            for r in batch[0]]
    assert sorted(rows) == list(range(40)) and rows != list(range(40))


def test_sharding_by_rank(two_files):
    shards = []
    for rank in range(2):
        dataset = create_pretraining_dataset(two_files, batch_size=4, seq_length=S, max_predictions_per_seq=P,
                                             vocab_size=V, rank=rank, group_size=2, shuffle=True, seed=3)
        shards.append({row_key(r) for batch in dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)
                       for r in batch[0]})
    assert len(shards[0]) == len(shards[1]) == 20
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(range(40))
    with pytest.raises(ValueError, match="rank 2 is not valid for group_size 2"):
        create_pretraining_dataset(two_files, 4, S, P, V, rank=2, group_size=2)


def test_too_few_rows_for_a_batch(two_files):
    with pytest.raises(DataMismatchError, match="fewer rows than batch_size 64"):
        create_pretraining_dataset(two_files, 64, S, P, V)


# --------------------------------------------------------------------------------------
# Validation errors
# --------------------------------------------------------------------------------------
def test_seq_length_mismatch(tmp_path, fmt):
    path = write(tmp_path / f"x.{fmt}", pretraining_arrays(3, seq=32))
    with pytest.raises(DataMismatchError, match=f"^seq_length 32 in {re.escape(str(path))} but 16 in the config$"):
        create_pretraining_dataset(tmp_path, 2, S, P, V)


def test_max_predictions_mismatch(tmp_path, fmt):
    path = write(tmp_path / f"x.{fmt}", pretraining_arrays(3, pred=20))
    with pytest.raises(DataMismatchError,
                       match=f"max_predictions_per_seq 20 in {re.escape(str(path))} but 4 in the config"):
        validate_pretraining_files(path, S, P, V)


def test_token_id_out_of_vocab(tmp_path, fmt):
    good = write(tmp_path / f"a.{fmt}", pretraining_arrays(3))
    data = pretraining_arrays(30)
    data["input_ids"][17, 5] = 30000
    bad = write(tmp_path / f"b.{fmt}", data)
    message = f"token id 30000 in {bad} (input_ids, row 17) is >= vocab_size 21128 of the config"
    with pytest.raises(DataMismatchError, match=f"^{re.escape(message)}$"):
        validate_pretraining_files([good, bad], S, P, 21128)
    validate_pretraining_files(good, S, P, 21128)
    validate_pretraining_files(bad, S, P, 21128, max_rows_per_file=10)  # row 17 not checked
    data["input_ids"][17, 5] = 3
    data["masked_lm_ids"][2, 1] = 150
    write(tmp_path / f"b.{fmt}", data)
    with pytest.raises(DataMismatchError, match=r"token id 150 in .* \(masked_lm_ids, row 2\) is >= vocab_size 99"):
        create_pretraining_dataset(bad, 2, S, P, V)
    data["masked_lm_ids"][2, 1] = 3
    data["masked_lm_positions"][4, 0] = S
    write(tmp_path / f"b.{fmt}", data)
    with pytest.raises(DataMismatchError, match=r"masked_lm_positions value 16 in .* \(row 4\) is outside"):
        validate_pretraining_files(bad, S, P, V)


def test_missing_column(tmp_path):
    path = write(tmp_path / "ft.mindrecord", {k: np.zeros((2, S)) for k in ("input_ids", "input_mask", "segment_ids")}
                 | {"label_ids": np.zeros((2, 1))}, finetune_columns(S))
    with pytest.raises(DataMismatchError, match=r"ft.mindrecord has no column\(s\) next_sentence_labels, masked_lm_positions, masked_lm_ids, "
                                                  "masked_lm_weights \(it has "):
        validate_pretraining_files(path, S, P, V)


def test_missing_and_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="data directory .* does not exist"):
        create_pretraining_dataset(tmp_path / "missing", 2, S, P, V)
    with pytest.raises(FileNotFoundError, match="no \\*.mindrecord or \\*.tfrecord files in directory"):
        create_pretraining_dataset(tmp_path, 2, S, P, V)


# --------------------------------------------------------------------------------------
# Fine-tuning dataset
# --------------------------------------------------------------------------------------
def finetune_arrays(n: int, label_length: int = 1) -> dict:
    rng = np.random.default_rng(n)
    ids = rng.integers(1, V, (n, S))
    ids[:, 0] = np.arange(n)
    return {"input_ids": ids, "input_mask": np.ones((n, S)), "segment_ids": np.zeros((n, S)),
            "label_ids": rng.integers(0, 3, (n, label_length))}


def test_finetune_dataset_eval_keeps_last_batch(tmp_path, fmt):
    write(tmp_path / f"dev.{fmt}", finetune_arrays(10), finetune_columns(S))
    dataset = create_finetune_dataset(tmp_path, 4, S, shuffle=False, drop_remainder=False)
    assert dataset.get_col_names() == ["input_ids", "input_mask", "segment_ids", "label_ids"]
    batches = list(dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert [b[3].shape for b in batches][0] == (4, 1)
    assert all(a.dtype == np.int32 for b in batches for a in b)
    assert [int(i) for b in batches for i in b[0][:, 0]] == list(range(10))
    assert create_finetune_dataset(tmp_path, 4, S).get_dataset_size() == 2  # training drops it


def test_finetune_dataset_ner_and_mismatch(tmp_path):
    path = write(tmp_path / "ner.mindrecord", finetune_arrays(6, label_length=S), finetune_columns(S, label_length=S))
    dataset = create_finetune_dataset(path, 3, S, label_length=S, shuffle=False)
    assert next(dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))[3].shape == (3, S)
    with pytest.raises(DataMismatchError, match=f"label_length {S} in .*ner.mindrecord but 1 in the config"):
        create_finetune_dataset(path, 3, S)
    with pytest.raises(DataMismatchError, match="seq_length 16 in .*ner.mindrecord but 32 in the config"):
        create_finetune_dataset(path, 3, 32, label_length=32)
    extra = finetune_columns(S, [Column("unique_ids", "int32", 1)], label_length=S)
    write(tmp_path / "squad.mindrecord", finetune_arrays(4, S) | {"unique_ids": np.arange(4)}, extra)
    dataset = create_finetune_dataset(tmp_path / "squad.mindrecord", 2, S, columns=extra, shuffle=False)
    assert dataset.get_col_names() == ["input_ids", "input_mask", "segment_ids", "label_ids", "unique_ids"]
