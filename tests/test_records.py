"""Tests for src/data/records.py, src/data/record_stats.py, tools/view_records.py, tools/tfrecord_to_mindrecord.py.

Small hand-made records in tmp_path: round trips in both formats, byte compatibility of the fast
writers (MindRecord: identical files to MindSpore's FileWriter; TFRecord: protos equal to
TensorFlow's), atomic writing (exception, SIGKILL), the viewer on a tiny vocab and statistics on a
hand-made record set.
"""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from src.data import records as rec
from src.data.record_stats import compute_record_stats, format_record
from src.data.records import Column, RecordWriter, finetune_columns, pretraining_columns, read_records

ROOT = Path(__file__).resolve().parents[1]
S, P = 16, 4


def random_pretraining(n: int, seed: int = 0, seq: int = S, pred: int = P) -> dict:
    """Random but well-formed-looking pretraining arrays (int64 like a generator would produce)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, seq + 1, n)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return {
        "input_ids": rng.integers(5, 99, (n, seq)) * mask,
        "input_mask": mask,
        "segment_ids": (np.arange(seq)[None, :] >= lengths[:, None] // 2) * mask,
        "next_sentence_labels": rng.integers(0, 2, n),  # 1-D: accepted for a length-1 column
        "masked_lm_positions": np.sort(rng.integers(1, 5, (n, pred)), axis=1),
        "masked_lm_ids": rng.integers(5, 99, (n, pred)),
        "masked_lm_weights": (rng.random((n, pred)) < 0.8).astype(np.float64),
    }


def written_values(data: dict) -> dict:
    return {k: np.asarray(v).reshape(len(v), -1) for k, v in data.items()}


@pytest.fixture(params=rec.FORMATS)
def fmt(request):
    if request.param == "tfrecord":
        pytest.importorskip("tensorflow")
    return request.param


# --------------------------------------------------------------------------------------
# Columns and formats
# --------------------------------------------------------------------------------------
def test_columns():
    cols = pretraining_columns(128, 20)
    assert [c.name for c in cols] == list(rec.PRETRAINING_COLUMN_ORDER)
    assert {c.name: (c.dtype, c.length) for c in cols} == {
        "input_ids": ("int32", 128), "input_mask": ("int32", 128), "segment_ids": ("int32", 128),
        "next_sentence_labels": ("int32", 1), "masked_lm_positions": ("int32", 20),
        "masked_lm_ids": ("int32", 20), "masked_lm_weights": ("float32", 20)}
    assert [(c.name, c.length) for c in finetune_columns(64)] == [
        ("input_ids", 64), ("input_mask", 64), ("segment_ids", 64), ("label_ids", 1)]
    assert finetune_columns(64, label_length=64)[3] == Column("label_ids", "int32", 64)
    extra = finetune_columns(64, [Column("label_ids", "int32", 64), Column("unique_ids", "int32", 1)])
    assert [(c.name, c.length) for c in extra][3:] == [("label_ids", 64), ("unique_ids", 1)]
    with pytest.raises(ValueError, match="max_seq_length"):
        pretraining_columns(0, 20)


def test_record_format():
    assert rec.record_format("a/x.mindrecord") == "mindrecord"
    assert rec.record_format("x.mindrecord3") == "mindrecord"
    for name in ("x.tfrecord", "x.tfrecords", "wiki.tfrecord-00001-of-00004", "x.tf_record"):
        assert rec.record_format(name) == "tfrecord", name
    with pytest.raises(ValueError, match="cannot tell"):
        rec.record_format("missing.bin")
    with pytest.raises(ValueError, match="named like a tfrecord"):
        RecordWriter("x.tfrecord", pretraining_columns(S, P), fmt="mindrecord")


# --------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------
def test_round_trip(tmp_path, fmt):
    data = random_pretraining(300)
    cols = pretraining_columns(S, P)
    path = tmp_path / f"part.{fmt}"
    with RecordWriter(path, cols) as writer:
        for start, stop in ((0, 1), (1, 64), (64, 64), (64, 300)):  # uneven batches, one empty
            writer.write({k: v[start:stop] for k, v in data.items()})
        assert writer.num_rows == 300
        assert not path.exists()  # nothing under the final name before close
    expected = {"mindrecord": {"part.mindrecord", "part.mindrecord.db"},
                "tfrecord": {"part.tfrecord", "part.tfrecord.schema.json"}}[fmt]
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temporaries left
    assert rec.count_records(path) == 300
    assert sorted(rec.record_columns(path), key=lambda c: c.name) == sorted(cols, key=lambda c: c.name)
    values = written_values(data)
    rows = list(read_records(path))
    assert len(rows) == 300
    for i in (0, 1, 63, 64, 299):
        for name, v in values.items():
            stored = rows[i][name]
            assert stored.dtype == (np.float32 if name == "masked_lm_weights" else
                                    np.int64 if fmt == "tfrecord" else np.int32)
            np.testing.assert_array_equal(stored, v[i].astype(stored.dtype))
    sub = list(read_records(path, ["masked_lm_ids", "input_ids"], max_rows=5))
    assert len(sub) == 5 and list(sub[0]) == ["masked_lm_ids", "input_ids"]


def test_empty_file(tmp_path, fmt):
    path = tmp_path / f"empty.{fmt}"
    with RecordWriter(path, pretraining_columns(S, P)):
        pass
    assert rec.count_records(path) == 0
    assert list(read_records(path)) == []
    assert {c.name for c in rec.record_columns(path)} == set(rec.PRETRAINING_COLUMN_ORDER)


def test_mindrecord_fast_path_is_byte_identical(tmp_path):
    """The writer's direct path produces exactly the files MindSpore's public FileWriter API writes."""
    from mindspore.mindrecord import FileWriter

    data = written_values(random_pretraining(500, seed=3))
    cols = pretraining_columns(S, P)
    (tmp_path / "fast").mkdir()
    (tmp_path / "public").mkdir()
    with RecordWriter(tmp_path / "fast" / "x.mindrecord", cols) as writer:
        assert writer._fast is not None
        writer.write(data)
    public = FileWriter(str(tmp_path / "public" / "x.mindrecord"), shard_num=1)
    public.add_schema({c.name: {"type": c.dtype, "shape": [c.length]} for c in cols}, "bert_zoo records")
    names = [c.name for c in cols]
    public.write_raw_data([{n: data[n][i].astype(c.dtype) for n, c in zip(names, cols)} for i in range(500)])
    public.commit()
    for name in ("x.mindrecord", "x.mindrecord.db"):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "public" / name).read_bytes(), name


def test_mindrecord_public_api_fallback(tmp_path, monkeypatch):
    """Without the fast path (another MindSpore version) the writer uses FileWriter.write_raw_data."""
    monkeypatch.setattr(rec._MindRecordFastPath, "attach", classmethod(lambda cls, writer: None))
    data = written_values(random_pretraining(50, seed=4))
    with RecordWriter(tmp_path / "x.mindrecord", pretraining_columns(S, P)) as writer:
        assert writer._fast is None
        writer.write(data)
    rows = list(read_records(tmp_path / "x.mindrecord"))
    np.testing.assert_array_equal(np.stack([r["input_ids"] for r in rows]), data["input_ids"])
    np.testing.assert_array_equal(np.stack([r["masked_lm_weights"] for r in rows]), data["masked_lm_weights"])


def test_renamed_mindrecord_is_unreadable(tmp_path):
    """Why the writer commits from a temporary directory instead of renaming: the name is inside the files."""
    import mindspore.dataset as ds

    with RecordWriter(tmp_path / "a.mindrecord", pretraining_columns(S, P)) as writer:
        writer.write(random_pretraining(4))
    os.rename(tmp_path / "a.mindrecord", tmp_path / "b.mindrecord")
    os.rename(tmp_path / "a.mindrecord.db", tmp_path / "b.mindrecord.db")
    with pytest.raises(RuntimeError):
        ds.MindDataset(str(tmp_path / "b.mindrecord")).get_dataset_size()


def test_tfrecord_encoding_matches_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    cols = [Column("ids", "int32", 5), Column("w", "float32", 3), Column("label", "int32", 1)]
    arrays = {"ids": np.array([[0, 1, 127, 128, 16383], [16384, 2**31 - 1, -1, -(2**31), 2**40]], np.int64),
              "w": np.array([[0.0, -1.5, 3.25e-8], [np.inf, 1e30, 0.1]], np.float32),
              "label": np.array([[1], [0]])}
    ours = rec.encode_examples(arrays, cols)
    for i, data in enumerate(ours):
        reference = tf.train.Example(features=tf.train.Features(feature={
            "ids": tf.train.Feature(int64_list=tf.train.Int64List(value=arrays["ids"][i].tolist())),
            "w": tf.train.Feature(float_list=tf.train.FloatList(value=arrays["w"][i].tolist())),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=arrays["label"][i].tolist()))}))
        assert tf.train.Example.FromString(data) == reference
        parsed = rec.parse_example(reference.SerializeToString())  # our decoder on TF's bytes
        np.testing.assert_array_equal(parsed["ids"], arrays["ids"][i])
        np.testing.assert_array_equal(parsed["w"], arrays["w"][i])
        assert parsed["label"].tolist() == arrays["label"][i].tolist()
    # A file written by TensorFlow itself reads back through record_columns and read_records.
    path = tmp_path / "tf_written.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        for data in ours:
            w.write(data)
    assert rec.record_columns(path) == cols
    rows = list(read_records(path))
    np.testing.assert_array_equal(rows[1]["ids"], arrays["ids"][1])


def test_tfrecord_writer_output_parses_with_tensorflow(tmp_path):
    """RecordWriter's TFRecord files through TensorFlow's own strict reader and parser."""
    tf = pytest.importorskip("tensorflow")
    data = written_values(random_pretraining(40, seed=7))
    with RecordWriter(tmp_path / "x.tfrecord", pretraining_columns(S, P)) as writer:
        writer.write(data)
    spec = {c.name: tf.io.FixedLenFeature([c.length], tf.int64 if c.is_int else tf.float32)
            for c in pretraining_columns(S, P)}
    parsed = list(tf.data.TFRecordDataset(str(tmp_path / "x.tfrecord")).map(
        lambda x: tf.io.parse_single_example(x, spec)).as_numpy_iterator())
    assert len(parsed) == 40
    for i in (0, 17, 39):
        for name, values in data.items():
            np.testing.assert_array_equal(parsed[i][name], values[i].astype(parsed[i][name].dtype))


def test_tfrecord_schema_json(tmp_path):
    import mindspore.dataset as ds

    pytest.importorskip("tensorflow")
    path = tmp_path / "x.tfrecord"
    with RecordWriter(path, pretraining_columns(8, 2)) as writer:
        writer.write(random_pretraining(6, seq=8, pred=2))
    schema_path = rec.tfrecord_schema_path(path)
    assert schema_path.name == "x.tfrecord.schema.json"
    content = json.loads(schema_path.read_text())
    assert content == {"datasetType": "TF", "numRows": 6, "columns": {
        "input_ids": {"type": "int64", "rank": 1, "shape": [8]},
        "input_mask": {"type": "int64", "rank": 1, "shape": [8]},
        "segment_ids": {"type": "int64", "rank": 1, "shape": [8]},
        "next_sentence_labels": {"type": "int64", "rank": 1, "shape": [1]},
        "masked_lm_positions": {"type": "int64", "rank": 1, "shape": [2]},
        "masked_lm_ids": {"type": "int64", "rank": 1, "shape": [2]},
        "masked_lm_weights": {"type": "float32", "rank": 1, "shape": [2]}}}
    assert rec.read_tfrecord_schema(schema_path) == (pretraining_columns(8, 2), 6)
    # The zoo's loader usage: TFRecordDataset with the schema file.
    dataset = ds.TFRecordDataset([str(path)], str(schema_path), shuffle=False)
    assert dataset.get_dataset_size() == 6
    rec.write_tfrecord_schema(tmp_path / "s.json", pretraining_columns(8, 2), None)
    assert "numRows" not in json.loads((tmp_path / "s.json").read_text())


def test_zoo_style_mindrecord_with_unknown_shapes(tmp_path):
    """The zoo writes shape [-1]: lengths come from the first row."""
    from mindspore.mindrecord import FileWriter

    writer = FileWriter(str(tmp_path / "zoo.mindrecord"), shard_num=1)
    writer.add_schema({"input_ids": {"type": "int32", "shape": [-1]},
                       "label_ids": {"type": "int64", "shape": [-1]}}, "zoo")
    writer.write_raw_data([{"input_ids": np.arange(6, dtype=np.int32), "label_ids": np.array([2], np.int64)}] * 3)
    writer.commit()
    cols = {c.name: c for c in rec.record_columns(tmp_path / "zoo.mindrecord")}
    assert cols == {"input_ids": Column("input_ids", "int32", 6), "label_ids": Column("label_ids", "int64", 1)}
    assert rec.count_records(tmp_path / "zoo.mindrecord") == 3


# --------------------------------------------------------------------------------------
# Errors and atomicity
# --------------------------------------------------------------------------------------
def test_write_errors(tmp_path):
    cols = pretraining_columns(S, P)
    good = random_pretraining(3)
    with RecordWriter(tmp_path / "x.mindrecord", cols) as writer:
        with pytest.raises(ValueError, match=r"missing columns \['masked_lm_ids'\]"):
            writer.write({k: v for k, v in good.items() if k != "masked_lm_ids"})
        with pytest.raises(ValueError, match=r"unknown columns \['extra'\]"):
            writer.write({**good, "extra": good["input_ids"]})
        with pytest.raises(ValueError, match=r"input_ids .*expected shape \[N, 16\], got \[3, 15\]"):
            writer.write({**good, "input_ids": good["input_ids"][:, :15]})
        with pytest.raises(ValueError, match="segment_ids .* has 2 rows but input_ids has 3"):
            writer.write({**good, "segment_ids": good["segment_ids"][:2]})
        big = good["input_ids"].copy()
        big[1, 2] = 2**31
        with pytest.raises(ValueError, match="input_ids .*value 2147483648 does not fit int32"):
            writer.write({**good, "input_ids": big})
        with pytest.raises(ValueError, match="non-integer"):
            writer.write({**good, "input_ids": good["input_ids"] + 0.5})
        writer.write(good)
    assert rec.count_records(tmp_path / "x.mindrecord") == 3  # failed writes added nothing


def test_exception_inside_with_leaves_nothing(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    with pytest.raises(RuntimeError, match="boom"):
        with RecordWriter(path, pretraining_columns(S, P)) as writer:
            writer.write(random_pretraining(5000))  # more than one internal flush
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_abort_keeps_previous_file(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    with RecordWriter(path, pretraining_columns(S, P)) as writer:
        writer.write(random_pretraining(7))
    writer = RecordWriter(path, pretraining_columns(S, P))
    writer.write(random_pretraining(9))
    writer.abort()
    assert rec.count_records(path) == 7
    assert all(not p.name.startswith(".") for p in tmp_path.iterdir())


CRASH_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    import numpy as np
    from src.data.records import RecordWriter, pretraining_columns
    rows = {{"input_ids": np.ones((5000, 16)), "input_mask": np.ones((5000, 16)), "segment_ids": np.zeros((5000, 16)),
            "next_sentence_labels": np.zeros(5000), "masked_lm_positions": np.ones((5000, 4)),
            "masked_lm_ids": np.ones((5000, 4)), "masked_lm_weights": np.ones((5000, 4))}}
    writer = RecordWriter({path!r}, pretraining_columns(16, 4))
    writer.write(rows)  # flushed to the temporary file: a real mid-write state
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_killed_writer_leaves_no_final_file(tmp_path):
    path = tmp_path / "out" / "x.mindrecord"
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT.format(root=str(ROOT), path=str(path))],
                          capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    left = list(path.parent.iterdir())
    assert not path.exists() and not Path(str(path) + ".db").exists()
    assert len(left) == 1 and left[0].name.startswith(".x.mindrecord.tmp-") and left[0].is_dir()
    assert (left[0] / "x.mindrecord").exists()  # the partial data stays under the temporary name


def test_missing_tensorflow_message(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    with pytest.raises(ImportError, match=r"TFRecord output needs TensorFlow: pip install tensorflow-cpu"):
        RecordWriter(tmp_path / "x.tfrecord", pretraining_columns(S, P))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# Viewer and statistics on a hand-made record set
# --------------------------------------------------------------------------------------
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "."]
ID = {t: i for i, t in enumerate(VOCAB)}
SEQ, PRED = 16, 3


def hand_record(a: str, b: str, masks: dict, nsp: int) -> dict:
    """A record ``[CLS] a [SEP] b [SEP]``; ``masks``: position -> (shown token, original token)."""
    tokens = ["[CLS]", *a.split(), "[SEP]", *b.split(), "[SEP]"]
    ids = [ID[t] for t in tokens]
    segments = [0] * (len(a.split()) + 2) + [1] * (len(b.split()) + 1)
    positions, originals = [], []
    for pos, (shown, orig) in sorted(masks.items()):
        assert tokens[pos] == orig, (tokens, pos)
        ids[pos] = ID[shown]
        positions.append(pos)
        originals.append(ID[orig])
    pad = SEQ - len(ids)
    mpad = PRED - len(positions)
    return {"input_ids": ids + [0] * pad, "input_mask": [1] * len(ids) + [0] * pad,
            "segment_ids": segments + [0] * pad, "next_sentence_labels": [nsp],
            "masked_lm_positions": positions + [0] * mpad, "masked_lm_ids": originals + [0] * mpad,
            "masked_lm_weights": [1.0] * len(positions) + [0.0] * mpad}


HAND_RECORDS = [
    # 9 real tokens; [MASK], random, (no kept); IsNext
    hand_record("the cat sat", "on the mat", {2: ("[MASK]", "cat"), 6: ("dog", "the")}, 0),
    # 5 real tokens (short: < 16 - 10); kept; RandomNext
    hand_record("dog", "mat", {1: ("dog", "dog")}, 1),
    # 16 real tokens (full); [MASK] x3; IsNext
    hand_record("the cat sat on the mat .", "the dog sat on the mat",
                {1: ("[MASK]", "the"), 2: ("[MASK]", "cat"), 10: ("[MASK]", "dog")}, 0),
]


def write_hand_records(path: Path, records=HAND_RECORDS, out_of_vocab: bool = False) -> None:
    batch = {k: np.array([r[k] for r in records]) for k in records[0]}
    if out_of_vocab:
        batch["input_ids"][1, 2] = 50  # a real token outside the 12-entry vocab
    with RecordWriter(path, pretraining_columns(SEQ, PRED)) as writer:
        writer.write(batch)


@pytest.fixture()
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def test_compute_record_stats(tmp_path, vocab_file):
    write_hand_records(tmp_path / "a.mindrecord", out_of_vocab=True)
    stats = compute_record_stats(tmp_path / "a.mindrecord", vocab_file)
    assert stats["records"] == 3
    assert stats["max_seq_length"] == [16] and stats["max_predictions_per_seq"] == [3]
    assert stats["vocab_size"] == 12
    assert stats["mean_real_tokens"] == pytest.approx((9 + 5 + 16) / 3)
    assert stats["short_share"] == pytest.approx(1 / 3)
    assert stats["mean_masked"] == pytest.approx(6 / 3)
    assert stats["masked_per_real_token"] == pytest.approx(6 / 30)
    assert stats["mask_share"] == pytest.approx(4 / 6)
    assert stats["kept_share"] == pytest.approx(1 / 6)
    assert stats["random_share"] == pytest.approx(1 / 6)
    assert stats["random_next_share"] == pytest.approx(1 / 3)
    assert stats["ids_out_of_vocab"] == 1
    # The same through a token -> id mapping.
    assert compute_record_stats([tmp_path / "a.mindrecord"], dict(ID)) == stats


def test_format_record():
    row = {k: np.array(v) for k, v in HAND_RECORDS[0].items()}
    text = format_record(row, dict(enumerate(VOCAB)), title="#0")
    assert text.splitlines() == [
        "#0 | IsNext | 9/16 tokens | 2 masked",
        "  A: [CLS] the [MASK]{cat} sat [SEP]",
        "  B: on dog→{the} mat [SEP]",
    ]
    kept = format_record({k: np.array(v) for k, v in HAND_RECORDS[1].items()}, dict(enumerate(VOCAB)))
    assert kept.splitlines()[1:] == ["  A: [CLS] {dog} [SEP]", "  B: mat [SEP]"]
    assert kept.startswith("RandomNext")


def test_view_records_tool(tmp_path, vocab_file, capsys):
    from tools import view_records

    write_hand_records(tmp_path / "a.mindrecord")
    write_hand_records(tmp_path / "b.mindrecord", HAND_RECORDS[::-1])
    assert view_records.main([str(tmp_path), "--vocab", str(vocab_file), "--num", "2", "--offset", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("legend:")
    headers = [line for line in lines if line.startswith("#")]
    assert headers == [f"#2 {tmp_path / 'a.mindrecord'} row 2 | IsNext | 16/16 tokens | 3 masked",
                       f"#3 {tmp_path / 'b.mindrecord'} row 0 | IsNext | 16/16 tokens | 3 masked"]
    assert "  A: [CLS] [MASK]{the} [MASK]{cat} sat on the mat . [SEP]" in lines
    assert view_records.main([str(tmp_path), "--vocab", str(vocab_file), "--stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["records"] == 6 and stats["random_next_share"] == pytest.approx(1 / 3)
    assert view_records.main([str(tmp_path), "--vocab", str(vocab_file), "--stats"]) == 0
    table = capsys.readouterr().out
    assert "NSP RandomNext share" in table and "33.33 %" in table
    assert view_records.main([str(tmp_path / "nope"), "--vocab", str(vocab_file)]) == 1
    assert "data directory" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# tfrecord_to_mindrecord
# --------------------------------------------------------------------------------------
def test_tfrecord_to_mindrecord(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from tools import tfrecord_to_mindrecord as tool

    src = tmp_path / "tf"
    parts = [random_pretraining(n, seed=n) for n in (37, 50)]
    for i, data in enumerate(parts):
        with RecordWriter(src / f"wiki_{i}.tfrecord", pretraining_columns(S, P)) as writer:
            writer.write(data)
    out = tmp_path / "mr"
    assert tool.main([str(src), "--output-dir", str(out), "--num-workers", "1", "--no-progress"]) == 0
    assert "converted 2 file(s), 87 rows" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["converted-summary.json", "wiki_0.mindrecord",
                                                      "wiki_0.mindrecord.db", "wiki_1.mindrecord", "wiki_1.mindrecord.db"]
    from src.data.dataset import pretraining_record_files  # the manifest makes the directory readable
    assert pretraining_record_files(out) == [out / "wiki_0.mindrecord", out / "wiki_1.mindrecord"]
    manifest = json.loads((out / "converted-summary.json").read_text())
    assert [s["rows"] for s in manifest["shards"]] == [37, 50] and manifest["rows"] == 87
    for i, data in enumerate(parts):
        tf_rows = list(read_records(src / f"wiki_{i}.tfrecord"))
        mr_rows = list(read_records(out / f"wiki_{i}.mindrecord"))
        assert len(tf_rows) == len(mr_rows) == len(data["input_ids"])
        for a, b in zip(tf_rows, mr_rows):
            assert a.keys() == b.keys()
            for k in a:
                assert b[k].dtype in (np.int32, np.float32)
                np.testing.assert_array_equal(a[k], b[k])
    # Existing outputs need --overwrite.
    assert tool.main([str(src), "--output-dir", str(out), "--no-progress"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert tool.output_name(Path("wiki.tfrecord-00001-of-00004")) == "wiki-00001-of-00004.mindrecord"


def test_tfrecord_to_mindrecord_rejects_overflow(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from tools import tfrecord_to_mindrecord as tool

    cols = [Column("input_ids", "int32", 4)]
    with __import__("tensorflow").io.TFRecordWriter(str(tmp_path / "big.tfrecord")) as w:
        for data in rec.encode_examples({"input_ids": np.array([[1, 2, 3, 2**33]])}, cols):
            w.write(data)
    assert tool.main([str(tmp_path / "big.tfrecord"), "--output-dir", str(tmp_path / "mr"), "--no-progress"]) == 1
    assert "value 8589934592 does not fit int32" in capsys.readouterr().err
    assert not (tmp_path / "mr" / "big.mindrecord").exists()


def test_tfrecord_to_mindrecord_process_pool(tmp_path):
    """The command line with two worker processes (spawned) and a progress bar."""
    pytest.importorskip("tensorflow")
    for i in range(2):
        with RecordWriter(tmp_path / "tf" / f"p{i}.tfrecord", pretraining_columns(S, P)) as writer:
            writer.write(random_pretraining(20 + i, seed=i))
    proc = subprocess.run([sys.executable, "tools/tfrecord_to_mindrecord.py", str(tmp_path / "tf"),
                           "--output-dir", str(tmp_path / "mr"), "--num-workers", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "converted 2 file(s), 41 rows" in proc.stdout
    assert rec.count_records(tmp_path / "mr" / "p1.mindrecord") == 21


# --------------------------------------------------------------------------------------
# Google's own create_pretraining_data output
# --------------------------------------------------------------------------------------
def test_google_create_pretraining_data_output(tmp_path, vocab_file):
    """A TFRecord written by google-research/bert (bert-tensorflow) reads, validates, converts and loads."""
    pytest.importorskip("bert.create_pretraining_data")
    from src.data.dataset import create_pretraining_dataset
    from tools import tfrecord_to_mindrecord as tool

    rng = np.random.default_rng(0)
    words = VOCAB[5:]
    corpus = []
    for _ in range(6):  # documents of 5 sentences, blank line between documents
        corpus += [" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(5)] + [""]
    (tmp_path / "corpus.txt").write_text("\n".join(corpus), encoding="utf-8")
    out = tmp_path / "google.tfrecord"
    proc = subprocess.run([sys.executable, "-m", "bert.create_pretraining_data", f"--input_file={tmp_path / 'corpus.txt'}",
                           f"--output_file={out}", f"--vocab_file={vocab_file}", "--max_seq_length=32",
                           "--max_predictions_per_seq=5", "--dupe_factor=2", "--random_seed=1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = int(re.search(r"Wrote (\d+) total instances", proc.stderr).group(1))
    assert sorted(rec.record_columns(out), key=lambda c: c.name) == sorted(pretraining_columns(32, 5),
                                                                           key=lambda c: c.name)
    assert rec.count_records(out) == written
    stats = compute_record_stats(out, vocab_file)
    assert stats["records"] == written and stats["ids_out_of_vocab"] == 0
    assert 0.1 < stats["masked_per_real_token"] < 0.2
    assert tool.main([str(out), "--output-dir", str(tmp_path / "mr"), "--no-progress"]) == 0
    for path in (out, tmp_path / "mr" / "google.mindrecord"):
        dataset = create_pretraining_dataset(path, 4, 32, 5, len(VOCAB), shuffle=False)
        batch = next(dataset.create_dict_iterator(output_numpy=True, num_epochs=1))
        assert batch["input_ids"].shape == (4, 32) and batch["input_ids"].dtype == np.int32
        assert (batch["input_ids"][:, 0] == ID["[CLS]"]).all()


def test_writer_copies_caller_buffers(tmp_path):
    """Rows are buffered: a caller reusing its arrays after write() must not change what was written."""
    cols = [Column("input_ids", "int32", 3)]
    buffer = np.zeros((2, 3), np.int32)
    with RecordWriter(tmp_path / "x.mindrecord", cols) as writer:
        for value in (1, 2):
            buffer[:] = value
            writer.write({"input_ids": buffer})
        buffer[:] = 9
    assert [int(r["input_ids"][0]) for r in read_records(tmp_path / "x.mindrecord")] == [1, 1, 2, 2]


def test_large_single_write(tmp_path, fmt):
    """One write() bigger than the internal flush size is encoded in slices; every row arrives in order."""
    data = written_values(random_pretraining(rec._FLUSH_ROWS * 2 + 5, seed=5))
    with RecordWriter(tmp_path / f"x.{fmt}", pretraining_columns(S, P)) as writer:
        writer.write(data)
    rows = list(read_records(tmp_path / f"x.{fmt}", ["input_ids"]))
    np.testing.assert_array_equal(np.stack([r["input_ids"] for r in rows]), data["input_ids"])
