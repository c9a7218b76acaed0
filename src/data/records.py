"""Record files for pretraining and fine-tuning: MindRecord and TFRecord writing and reading.

Both formats hold the same fixed-length columns (see ``pretraining_columns``). MindRecord stores
``int32``/``float32`` arrays; TFRecord stores ``tf.train.Example`` protos with ``int64_list`` for
integer columns and ``float_list`` for float columns (Google's format).

Writing (``RecordWriter``) is atomic: the final file name appears only on ``close()``.

* TFRecord: rows go to ``.NAME.tmp-XXXXXXXX`` beside the final file, which is renamed to ``NAME``
  on close (after the schema JSON ``NAME.schema.json``, written the same way).
* MindRecord: the ``.db`` index and the file header both store the file's base name, so a finished
  MindRecord file cannot be renamed. The writer therefore writes ``NAME`` and ``NAME.db`` inside a
  temporary sibling directory ``.NAME.tmp-XXXXXXXX/`` and on close moves the index, then the data
  file, into place under the same base name and removes the directory.

An exception or ``KeyboardInterrupt`` inside ``with RecordWriter(...)`` removes the temporary
files. A killed process (SIGKILL, power loss) can leave only those dot-prefixed ``*.tmp-*``
names, never a file under the final name, with one exception: a kill between the two renames of a
MindRecord commit (microseconds) leaves ``NAME.db`` without ``NAME``; readers look for ``NAME``.
Replacing an existing MindRecord file removes the old ``NAME`` first, so an old data file is never
paired with a new index.
Stale ``.NAME.tmp-*`` entries are safe to delete.

Writing TFRecord needs TensorFlow (its ``TFRecordWriter`` frames and checksums the records; the
``tf.train.Example`` bytes are encoded here with numpy, ``encode_examples``). Reading needs no
TensorFlow: ``mindspore.dataset`` decodes both formats, and the schema of a TFRecord file is taken
from its first record with a small protobuf parser in this module.

Throughput (128-token pretraining rows, this project's 2-core CPU machine, batches of 4096 rows):
MindRecord about 60k rows/s (MindSpore's ``FileWriter.write_raw_data`` alone: about 7k), TFRecord
about 80k rows/s (building ``tf.train.Example`` objects: about 13k). Single-row ``write`` calls
reach about 25k rows/s; write in batches.

MindSpore's writer gives MindRecord files mode 0600 and a sparse layout (16 MB header + 32 MB
pages reserved; ``ls`` shows at least 48 MB, ``du`` the real size): copy them with sparse-aware
tools.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

FORMATS = ("mindrecord", "tfrecord")
DTYPES = ("int32", "float32")

PRETRAINING_COLUMN_ORDER = (
    "input_ids", "input_mask", "segment_ids", "next_sentence_labels",
    "masked_lm_positions", "masked_lm_ids", "masked_lm_weights",
)
"""The zoo's pretraining column order (the order the loader outputs)."""

FINETUNE_COLUMN_ORDER = ("input_ids", "input_mask", "segment_ids", "label_ids")

TF_MISSING_MESSAGE = "TFRecord output needs TensorFlow: pip install tensorflow-cpu / the [tf] extra"

_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_FLUSH_ROWS = 4096  # rows buffered per write call to the underlying writer


@dataclass(frozen=True)
class Column:
    """One fixed-length column of a record file.

    Attributes:
        name: column (feature) name.
        dtype: ``"int32"`` or ``"float32"``: the MindRecord type. TFRecord stores integers as
            ``int64_list`` and floats as ``float_list``; ``record_columns`` of a MindRecord file
            written by another tool may also report ``"int64"`` or ``"float64"``.
        length: number of values per row (the column is a 1-D array of this length).
    """

    name: str
    dtype: str
    length: int

    @property
    def is_int(self) -> bool:
        return self.dtype.startswith("int")

    @property
    def tf_type(self) -> str:
        """The type in a TFRecord schema JSON: ``int64`` or ``float32``."""
        return "int64" if self.is_int else "float32"


def pretraining_columns(max_seq_length: int, max_predictions_per_seq: int) -> List[Column]:
    """Columns of a pretraining record (Google's and the zoo's names), in the zoo's order.

    ``input_ids``, ``input_mask``, ``segment_ids`` int32 [S]; ``next_sentence_labels`` int32 [1];
    ``masked_lm_positions``, ``masked_lm_ids`` int32 [P]; ``masked_lm_weights`` float32 [P].
    """
    _check_positive(max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq)
    s, p = max_seq_length, max_predictions_per_seq
    lengths = {"input_ids": s, "input_mask": s, "segment_ids": s, "next_sentence_labels": 1,
               "masked_lm_positions": p, "masked_lm_ids": p, "masked_lm_weights": p}
    return [Column(name, "float32" if name == "masked_lm_weights" else "int32", lengths[name])
            for name in PRETRAINING_COLUMN_ORDER]


def finetune_columns(max_seq_length: int, extra: Sequence[Column] = (), *, label_length: int = 1) -> List[Column]:
    """Columns of a fine-tuning record.

    Args:
        max_seq_length: S.
        extra: more columns (e.g. SQuAD's ``unique_ids``, ``start_positions``); a column named
            like a default one replaces it in place.
        label_length: length of ``label_ids``: 1 for classification, S for token tagging (NER).

    Returns:
        ``input_ids``, ``input_mask``, ``segment_ids`` int32 [S], ``label_ids`` int32
        [label_length], then the other ``extra`` columns.
    """
    _check_positive(max_seq_length=max_seq_length, label_length=label_length)
    columns = [Column("input_ids", "int32", max_seq_length), Column("input_mask", "int32", max_seq_length),
               Column("segment_ids", "int32", max_seq_length), Column("label_ids", "int32", label_length)]
    index = {c.name: i for i, c in enumerate(columns)}
    for col in extra:
        if col.name in index:
            columns[index[col.name]] = col
        else:
            index[col.name] = len(columns)
            columns.append(col)
    return columns


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------------------
# Formats and paths
# --------------------------------------------------------------------------------------
_MINDRECORD_RE = re.compile(r"\.mindrecord\d*$")
_TFRECORD_RE = re.compile(r"\.(tfrecords?|tf_record)(-\d+-of-\d+)?$|\.tfrecords?-\d+$")


def record_format(path: PathLike, fmt: Optional[str] = None) -> str:
    """The format of a record file: ``fmt`` if given, else from the suffix, else from the content.

    ``.mindrecord`` (also the zoo's shard names ``.mindrecord0``...) is MindRecord; ``.tfrecord``,
    ``.tfrecords``, ``.tf_record`` (also ``-00001-of-00010`` shard suffixes) are TFRecord. Other
    names are recognised by the MindRecord header if the file exists.

    Raises:
        ValueError: unknown ``fmt``, or a name whose format cannot be told.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown record format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    name = Path(path).name
    if _MINDRECORD_RE.search(name):
        return "mindrecord"
    if _TFRECORD_RE.search(name):
        return "tfrecord"
    if os.path.isfile(path):
        with open(path, "rb") as f:
            head = f.read(24)
        if head[8:22] == b'{"header_size"':
            return "mindrecord"
        if len(head) >= 12 or len(head) == 0:
            return "tfrecord"
    raise ValueError(f"cannot tell the record format of {path}: name it *.mindrecord or *.tfrecord")


def _writer_format(path: Path, fmt: Optional[str]) -> str:
    named = ("mindrecord" if _MINDRECORD_RE.search(path.name)
             else "tfrecord" if _TFRECORD_RE.search(path.name) else None)
    if fmt is None:
        if named is None:
            raise ValueError(f"cannot tell the record format of {path} from its name: use a .mindrecord or "
                             f".tfrecord suffix or pass fmt")
        return named
    fmt = record_format(path, fmt)
    if named is not None and named != fmt:
        raise ValueError(f"{path} is named like a {named} file but fmt is {fmt!r}")
    return fmt


def tfrecord_schema_path(path: PathLike) -> Path:
    """Where ``RecordWriter`` puts the schema JSON of a TFRecord file: ``NAME.schema.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".schema.json")


def _temp_name(final: Path) -> str:
    return f".{final.name}.tmp-"


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
class RecordWriter:
    """Writes fixed-length rows to one MindRecord or TFRecord file, atomically.

    Args:
        path: final file name; its suffix (``.mindrecord`` / ``.tfrecord``) gives the format
            unless ``fmt`` is given. A MindRecord file gets its index ``path + ".db"`` beside it.
            The parent directory is created if needed; an existing file is replaced on close.
        columns: the columns, each written as a 1-D array of ``length`` values.
        fmt: ``"mindrecord"`` or ``"tfrecord"``; None to infer from the suffix.
        write_schema: TFRecord only: also write the zoo's schema JSON (``tfrecord_schema_path``).

    Use as a context manager: on normal exit the file is committed (``close``), on an exception
    everything written is removed (``abort``). See the module docstring for what a killed process
    leaves behind.

    Example:
        >>> with RecordWriter("data/train.mindrecord", pretraining_columns(128, 20)) as writer:
        ...     writer.write({"input_ids": ids, ...})   # each array [N, length]
    """

    def __init__(self, path: PathLike, columns: Sequence[Column], fmt: Optional[str] = None,
                 *, write_schema: bool = True) -> None:
        self.path = Path(path)
        self.fmt = _writer_format(self.path, fmt)
        self.columns = list(columns)
        if not self.columns:
            raise ValueError("RecordWriter needs at least one column")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names in {names}")
        for c in self.columns:
            if c.dtype not in DTYPES:
                raise ValueError(f"column {c.name}: dtype must be one of {DTYPES}, got {c.dtype!r}")
            _check_positive(**{f"length of column {c.name}": c.length})
        self._write_schema = write_schema
        self._num_rows = 0
        self._buffer: List[Dict[str, np.ndarray]] = []
        self._buffered = 0
        self._state = "open"
        self._temp: Optional[Path] = None  # the temporary file (TFRecord) or directory (MindRecord)
        self._writer: Any = None
        self._fast: Optional[_MindRecordFastPath] = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.fmt == "tfrecord":
                self._open_tfrecord()
            else:
                self._open_mindrecord()
        except BaseException:
            self._remove_temp()
            self._state = "aborted"
            raise

    # -- public --------------------------------------------------------------------------
    @property
    def num_rows(self) -> int:
        """Rows written so far (including rows still buffered)."""
        return self._num_rows

    def write(self, batch: Mapping[str, Any]) -> None:
        """Appends N rows.

        Args:
            batch: one array per column, shape [N, length] (or [N] for a column of length 1), any
                integer, boolean or float dtype. Integer columns are cast to int32 (values must fit;
                floats must be whole numbers), float columns to float32.

        Raises:
            ValueError: missing or unknown columns, wrong shapes, different N, values that do not
                fit the column type; the message names the column and the file.
        """
        if self._state != "open":
            raise ValueError(f"RecordWriter for {self.path} is {self._state}")
        arrays = self._check_batch(batch)
        n = len(arrays[self.columns[0].name])
        if n == 0:
            return
        self._buffer.append(arrays)
        self._buffered += n
        self._num_rows += n
        if self._buffered >= _FLUSH_ROWS:
            self._flush()

    def close(self) -> None:
        """Commits: flushes, finishes the file and moves it (and its index/schema) to the final name."""
        if self._state == "closed":
            return
        if self._state != "open":
            raise ValueError(f"RecordWriter for {self.path} is {self._state}")
        try:
            self._flush()
            if self.fmt == "tfrecord":
                self._commit_tfrecord()
            else:
                self._commit_mindrecord()
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        logger.debug("wrote %d rows to %s", self._num_rows, self.path)

    def abort(self) -> None:
        """Discards everything written; no file appears under the final name."""
        if self._state in ("closed", "aborted"):
            return
        self._state = "aborted"
        writer, self._writer = self._writer, None
        if self.fmt == "tfrecord" and writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - best effort, the file is deleted anyway
                pass
        del writer
        self._buffer.clear()
        self._remove_temp()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "open":
            try:
                logger.warning("RecordWriter for %s was never closed: discarding its rows", self.path)
                self.abort()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    def __repr__(self) -> str:
        return f"RecordWriter({str(self.path)!r}, fmt={self.fmt!r}, rows={self._num_rows}, {self._state})"

    # -- checks ----------------------------------------------------------------------------
    def _check_batch(self, batch: Mapping[str, Any]) -> Dict[str, np.ndarray]:
        expected = [c.name for c in self.columns]
        missing = [n for n in expected if n not in batch]
        unknown = [n for n in batch if n not in expected]
        if missing or unknown:
            raise ValueError(f"batch for {self.path}: missing columns {missing}, unknown columns {unknown}; "
                             f"expected {expected}")
        out: Dict[str, np.ndarray] = {}
        n: Optional[int] = None
        for col in self.columns:
            a = np.asarray(batch[col.name])
            if a.ndim == 1 and col.length == 1:
                a = a.reshape(-1, 1)
            if a.ndim != 2 or a.shape[1] != col.length:
                raise ValueError(f"column {col.name} for {self.path}: expected shape [N, {col.length}], "
                                 f"got {list(a.shape)}")
            if n is None:
                n = a.shape[0]
            elif a.shape[0] != n:
                raise ValueError(f"column {col.name} for {self.path} has {a.shape[0]} rows but "
                                 f"{self.columns[0].name} has {n}")
            out[col.name] = _cast(a, col, self.path)
        return out

    # -- buffering -------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._buffer:
            return
        if len(self._buffer) == 1:
            arrays = self._buffer[0]
        else:
            arrays = {c.name: np.concatenate([b[c.name] for b in self._buffer]) for c in self.columns}
        self._buffer = []
        self._buffered = 0
        n = len(arrays[self.columns[0].name])
        for start in range(0, n, _FLUSH_ROWS):  # bounded memory for the encoded bytes
            part = arrays if n <= _FLUSH_ROWS else {k: v[start:start + _FLUSH_ROWS] for k, v in arrays.items()}
            if self.fmt == "tfrecord":
                write = self._writer.write
                for record in encode_examples(part, self.columns):
                    write(record)
            else:
                self._write_mindrecord(part)

    def _remove_temp(self) -> None:
        temp, self._temp = self._temp, None
        if temp is None:
            return
        try:
            if temp.is_dir():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
        except OSError as err:  # pragma: no cover - nothing more to do
            logger.warning("could not remove temporary %s: %s", temp, err)

    # -- TFRecord -------------------------------------------------------------------------
    def _open_tfrecord(self) -> None:
        tf = _import_tensorflow()
        fd, name = tempfile.mkstemp(prefix=_temp_name(self.path), dir=self.path.parent)
        os.close(fd)
        self._temp = Path(name)
        self._writer = tf.io.TFRecordWriter(name)

    def _commit_tfrecord(self) -> None:
        self._writer.close()
        self._writer = None
        if self._write_schema:
            write_tfrecord_schema(tfrecord_schema_path(self.path), self.columns, self._num_rows)
        _make_world_readable(self._temp)
        os.replace(self._temp, self.path)
        self._temp = None

    # -- MindRecord -------------------------------------------------------------------------
    def _open_mindrecord(self) -> None:
        from mindspore.mindrecord import FileWriter

        self._temp = Path(tempfile.mkdtemp(prefix=_temp_name(self.path), dir=self.path.parent))
        writer = FileWriter(str(self._temp / self.path.name), shard_num=1, overwrite=True)
        writer.add_schema({c.name: {"type": c.dtype, "shape": [c.length]} for c in self.columns},
                          "bert_zoo records")
        self._writer = writer
        self._fast = _MindRecordFastPath.attach(writer)

    def _write_mindrecord(self, arrays: Dict[str, np.ndarray]) -> None:
        if self._fast is not None:
            self._fast.write(arrays)
            return
        names = [c.name for c in self.columns]
        rows = [dict(zip(names, values)) for values in zip(*(arrays[n] for n in names))]
        self._writer.write_raw_data(rows)

    def _commit_mindrecord(self) -> None:
        self._writer.commit()
        self._writer = None
        temp_file = self._temp / self.path.name
        db = Path(str(temp_file) + ".db")
        if not temp_file.is_file() or not db.is_file():
            raise RuntimeError(f"MindRecord writer did not produce {temp_file} and its .db index")
        # A previous file of this name goes first, so it is never paired with the new index; then
        # the index, then the data file, which is what readers look for.
        self.path.unlink(missing_ok=True)
        os.replace(db, str(self.path) + ".db")
        os.replace(temp_file, self.path)
        self._remove_temp()


def _cast(a: np.ndarray, col: Column, path: Path) -> np.ndarray:
    target = np.dtype(col.dtype)
    if a.dtype == target:
        return np.array(a, order="C")  # a copy: rows are buffered, the caller may reuse its arrays
    if a.dtype.kind not in "biuf":
        raise ValueError(f"column {col.name} for {path}: expected numbers, got dtype {a.dtype}")
    if col.is_int:
        if a.dtype.kind == "f":
            if a.size and not np.all(np.isfinite(a) & (a == np.round(a))):
                raise ValueError(f"column {col.name} for {path}: int column given non-integer floats")
        if a.size and a.dtype.kind != "b" and np.dtype(a.dtype).itemsize >= 4:
            lo, hi = a.min(), a.max()
            if lo < _INT32_MIN or hi > _INT32_MAX:
                bad = lo if lo < _INT32_MIN else hi
                raise ValueError(f"column {col.name} for {path}: value {bad} does not fit int32")
    return np.ascontiguousarray(a, dtype=target)


def _make_world_readable(path: Path) -> None:
    # mkstemp creates 0600; give the final file the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


class _MindRecordFastPath:
    """Writes rows through MindSpore's C++ shard writer, bypassing ``FileWriter``'s per-row Python.

    ``FileWriter.write_raw_data`` re-reads the header schema from C++ several times per row and
    validates every field in Python (about 7k rows/s for 128-token pretraining rows); this path
    builds the same blob bytes with numpy (MindRecord's multi-field blob: for each blob field in
    header order, an 8-byte big-endian length and the raw array bytes) and hands them to the
    same C++ writer: the files are byte-identical (``tests/test_records.py``) at about 8x the
    speed. Rows are validated by ``RecordWriter`` beforehand. If the private attributes it needs
    are missing (another MindSpore version), ``attach`` returns None and the public API is used.
    """

    def __init__(self, writer: Any, shard_writer: Any, blob_fields: List[str]) -> None:
        self._writer = writer
        self._shard_writer = shard_writer
        self._blob_fields = blob_fields

    @classmethod
    def attach(cls, writer: Any) -> Optional["_MindRecordFastPath"]:
        try:
            shard_writer = writer._writer  # mindspore.mindrecord.core.shardwriter.ShardWriter
            blob_fields = list(writer._header.blob_fields)
            schema_fields = set(writer._header.schema)
            native = shard_writer._writer
            if not (callable(getattr(native, "write_raw_data", None)) and hasattr(shard_writer, "open")
                    and hasattr(writer, "_paths") and set(blob_fields) == schema_fields):
                return None
        except Exception:  # noqa: BLE001 - any surprise: use the public API
            return None
        return cls(writer, shard_writer, blob_fields)

    def write(self, arrays: Dict[str, np.ndarray]) -> None:
        import mindspore._c_mindrecord as ms_native  # the module FileWriter itself uses

        writer, shard_writer = self._writer, self._shard_writer
        # What FileWriter.write_raw_data does before writing (non-parallel mode).
        if writer._parallel_writer is None:
            writer._parallel_writer = False
        if not shard_writer.is_open:
            shard_writer.open(writer._paths, writer._overwrite)
        if not shard_writer.get_shard_header():
            shard_writer.set_shard_header(writer._header)
        n = len(arrays[self._blob_fields[0]])
        parts = []
        for name in self._blob_fields:
            raw = arrays[name].view(np.uint8).reshape(n, -1)
            size = np.frombuffer(int(raw.shape[1]).to_bytes(8, "big"), dtype=np.uint8)
            parts.append(np.broadcast_to(size, (n, 8)))
            parts.append(raw)
        if len(self._blob_fields) == 1:  # a single blob field is stored without the length prefix
            parts = parts[1:]
        table = np.concatenate(parts, axis=1)
        blobs = [row.tobytes() for row in table]
        status = shard_writer._writer.write_raw_data({}, blobs, True, False)
        if status != ms_native.MSRStatus.SUCCESS:
            raise RuntimeError(f"MindRecord write failed for {writer._paths[0]}")


def _import_tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError(TF_MISSING_MESSAGE) from None
    return tf


def write_tfrecord_schema(path: PathLike, columns: Sequence[Column], num_rows: Optional[int]) -> None:
    """Writes the zoo's TFRecord schema JSON (atomically).

    ``{"datasetType": "TF", "numRows": N, "columns": {name: {"type": "int64"|"float32", "rank": 1,
    "shape": [length]}}}``. ``num_rows`` None leaves ``numRows`` out. Note that
    ``mindspore.dataset.TFRecordDataset`` reads at most ``numRows`` rows in total when given such
    a schema, so a per-file schema must not be used for a multi-file dataset (the loader in
    ``src/data/dataset.py`` builds its own schema without ``numRows``).
    """
    path = Path(path)
    content: Dict[str, Any] = {"datasetType": "TF"}
    if num_rows is not None:
        content["numRows"] = int(num_rows)
    content["columns"] = {c.name: {"type": c.tf_type, "rank": 1, "shape": [c.length]} for c in columns}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_name(path), dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2)
            f.write("\n")
        _make_world_readable(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_tfrecord_schema(path: PathLike) -> Tuple[List[Column], Optional[int]]:
    """Reads a schema JSON written by ``write_tfrecord_schema`` (or the zoo): (columns, numRows)."""
    with open(path, encoding="utf-8") as f:
        content = json.load(f)
    try:
        columns = []
        for name, spec in content["columns"].items():
            shape = spec.get("shape", [1])
            length = int(np.prod(shape)) if shape else 1
            columns.append(Column(name, "float32" if spec["type"].startswith("float") else "int32", length))
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a TFRecord schema JSON ({err!r})") from None
    return columns, content.get("numRows")


# --------------------------------------------------------------------------------------
# tf.train.Example encoding and decoding (no TensorFlow needed)
# --------------------------------------------------------------------------------------
_VARINT_TABLE = [bytes([i]) if i < 0x80 else bytes([(i & 0x7F) | 0x80, i >> 7]) for i in range(1 << 14)]


def _varint(n: int) -> bytes:
    if n < 16384:
        return _VARINT_TABLE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _packed_varints(a: np.ndarray) -> Tuple[bytes, List[int]]:
    """Varint-encodes an int array [N, L] row by row: (all bytes, N + 1 row offsets)."""
    v = a.astype(np.int64).view(np.uint64)  # negative int64 values take 10 bytes, as in protobuf
    nbytes = np.ones(v.shape, dtype=np.int64)
    for k in range(1, 10):
        nbytes += v >= np.uint64(1 << (7 * k))
    kmax = int(nbytes.max()) if v.size else 1
    shifts = np.arange(kmax, dtype=np.uint64) * np.uint64(7)
    groups = ((v[..., None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)  # [N, L, kmax]
    k = np.arange(kmax)
    groups |= (k < nbytes[..., None] - 1).astype(np.uint8) << 7  # continuation bits
    flat = groups[k < nbytes[..., None]].tobytes()
    offsets = np.concatenate([[0], np.cumsum(nbytes.sum(axis=1))]).tolist()
    return flat, offsets


def encode_examples(arrays: Mapping[str, np.ndarray], columns: Sequence[Column]) -> List[bytes]:
    """Serialises N rows as ``tf.train.Example`` protos, without TensorFlow.

    The bytes parse with ``tf.train.Example.FromString`` to the same message TensorFlow builds
    (integer columns as packed ``int64_list``, float columns as packed ``float_list``; features in
    column order). About 3.5x faster than building ``tf.train.Example`` objects.

    Args:
        arrays: one array [N, length] per column (int32/int64 or float32).
        columns: the columns, in the order the features are written.
    """
    n = len(arrays[columns[0].name])
    encoded = []
    for col in columns:
        key = col.name.encode("utf-8")
        key_field = b"\x0a" + _varint(len(key)) + key + b"\x12"  # map entry: key, then value tag
        a = arrays[col.name]
        if col.is_int:
            flat, offsets = _packed_varints(a)
            encoded.append((True, key_field, flat, offsets))
        else:
            raw = np.ascontiguousarray(a, dtype="<f4")
            size = raw.shape[1] * 4
            float_list = b"\x0a" + _varint(size)  # FloatList.value, packed
            feature = b"\x12" + _varint(len(float_list) + size) + float_list  # Feature.float_list
            value_len = len(feature) + size
            entry = key_field + _varint(value_len) + feature
            prefix = b"\x0a" + _varint(len(entry) + size) + entry  # Features.feature entry
            encoded.append((False, prefix, raw.tobytes(), size))
    out = []
    for i in range(n):
        parts: List[bytes] = []
        for is_int, prefix, data, extra in encoded:
            if is_int:
                packed = data[extra[i]:extra[i + 1]]
                int_list = b"\x0a" + _varint(len(packed))  # Int64List.value, packed
                feature_len = len(int_list) + len(packed)
                feature = b"\x1a" + _varint(feature_len)  # Feature.int64_list
                value_len = len(feature) + feature_len
                value_prefix = _varint(value_len)
                parts += (b"\x0a", _varint(len(prefix) + len(value_prefix) + value_len), prefix,
                          value_prefix, feature, int_list, packed)
            else:
                parts += (prefix, data[i * extra:(i + 1) * extra])
        body = b"".join(parts)
        out.append(b"\x0a" + _varint(len(body)) + body)  # Example.features
    return out


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[Tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message; LEN values as bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def parse_example(data: bytes) -> Dict[str, Union[np.ndarray, List[bytes]]]:
    """Decodes one serialised ``tf.train.Example`` without TensorFlow (slow; for schemas and tests).

    Returns:
        Feature name to an int64 array (``int64_list``), a float32 array (``float_list``) or a
        list of bytes (``bytes_list``).
    """
    out: Dict[str, Union[np.ndarray, List[bytes]]] = {}
    for field, _, features in _fields(data):
        if field != 1:
            continue
        for ffield, _, entry in _fields(features):
            if ffield != 1:
                continue
            key, feature = "", b""
            for efield, _, value in _fields(entry):
                if efield == 1:
                    key = bytes(value).decode("utf-8")
                elif efield == 2:
                    feature = value
            value_out: Union[np.ndarray, List[bytes]] = np.zeros(0, np.int64)
            for kind, _, lst in _fields(feature):
                if kind == 1:
                    value_out = [bytes(v) for f, _, v in _fields(lst) if f == 1]
                elif kind == 2:
                    floats: List[float] = []
                    for f, wire, v in _fields(lst):
                        if f == 1:
                            floats.extend(np.frombuffer(v, "<f4").tolist())
                    value_out = np.array(floats, dtype=np.float32)
                elif kind == 3:
                    ints: List[int] = []
                    for f, wire, v in _fields(lst):
                        if f != 1:
                            continue
                        if wire == 0:
                            ints.append(_signed64(v))
                        else:
                            pos = 0
                            while pos < len(v):
                                x, pos = _read_varint(v, pos)
                                ints.append(_signed64(x))
                    value_out = np.array(ints, dtype=np.int64)
            out[key] = value_out
    return out


def iter_tfrecord_payloads(path: PathLike, limit: Optional[int] = None) -> Iterator[bytes]:
    """The serialised records of a TFRecord file, without TensorFlow (CRCs are not checked)."""
    count = 0
    with open(path, "rb") as f:
        while limit is None or count < limit:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ValueError(f"{path}: truncated TFRecord file (record {count})")
            (size,) = struct.unpack("<Q", header[:8])
            data = f.read(size)
            if len(data) < size or len(f.read(4)) < 4:
                raise ValueError(f"{path}: truncated TFRecord file (record {count})")
            count += 1
            yield data


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def record_columns(path: PathLike) -> List[Column]:
    """The columns of an existing record file, in the file's order.

    MindRecord: from the header (and the first row when the header says shape [-1], as the zoo's
    writer does). TFRecord: from the first record; integer features are reported as ``int32``
    (the type they are written from and cast to), float features as ``float32``; an empty file
    falls back to the schema JSON beside it.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a record file of fixed-length numeric columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"record file {path} does not exist")
    if record_format(path) == "mindrecord":
        return _mindrecord_columns(path)
    for payload in iter_tfrecord_payloads(path, limit=1):
        try:
            example = parse_example(payload)
        except (ValueError, IndexError) as err:
            raise ValueError(f"{path}: the first record is not a tf.train.Example ({err})") from None
        columns = []
        for name, value in example.items():
            if isinstance(value, list):
                raise ValueError(f"{path}: feature {name} is a bytes_list; only numeric features are supported")
            columns.append(Column(name, "float32" if value.dtype.kind == "f" else "int32", len(value)))
        return columns
    schema = tfrecord_schema_path(path)
    if schema.is_file():
        return read_tfrecord_schema(schema)[0]
    raise ValueError(f"{path} has no records and no schema JSON {schema.name} beside it")


def _mindrecord_columns(path: Path) -> List[Column]:
    from mindspore.mindrecord import FileReader

    try:
        reader = FileReader(str(path), num_consumer=1)
    except Exception as err:  # noqa: BLE001 - MindSpore raises various types
        raise ValueError(f"cannot open MindRecord file {path} (is its .db index beside it, under the "
                         f"name it was written with?): {_short(err)}") from None
    try:
        schema = reader.schema()
        first: Optional[Dict[str, Any]] = None
        if any(spec.get("shape") in (None, [-1]) for spec in schema.values()):
            first = next(iter(reader.get_next()), None)
    finally:
        reader.close()
    columns = []
    for name, spec in schema.items():
        dtype, shape = spec["type"], spec.get("shape")
        if dtype not in ("int32", "int64", "float32", "float64"):
            raise ValueError(f"{path}: column {name} has type {dtype}; only numeric columns are supported")
        if shape is None:
            length = 1
        elif shape == [-1]:
            if first is None:
                raise ValueError(f"{path}: column {name} has shape [-1] and the file has no rows")
            length = int(np.asarray(first[name]).size)
        elif len(shape) == 1 and shape[0] > 0:
            length = int(shape[0])
        else:
            raise ValueError(f"{path}: column {name} has shape {shape}; only 1-D columns are supported")
        columns.append(Column(name, dtype, length))
    return columns


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    match = re.search(r"\[ERROR\][^.]*\.?[^.]*\.", text)
    return match.group(0) if match else text[:300]


def count_records(path: PathLike) -> int:
    """Number of rows in a record file (TFRecord: a scan of the record lengths, no decoding)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"record file {path} does not exist")
    if record_format(path) == "mindrecord":
        from mindspore.mindrecord import FileReader

        reader = FileReader(str(path), num_consumer=1)
        try:
            return int(reader.len())
        finally:
            reader.close()
    count = 0
    with open(path, "rb") as f:
        while True:
            header = f.read(8)
            if not header:
                return count
            if len(header) < 8:
                raise ValueError(f"{path}: truncated TFRecord file (record {count})")
            (size,) = struct.unpack("<Q", header)
            f.seek(size + 8, os.SEEK_CUR)
            count += 1


def mindspore_schema(columns: Sequence[Column]) -> Any:
    """A ``mindspore.dataset.Schema`` for reading TFRecord files (int64 / float32, fixed shapes, no numRows)."""
    import mindspore.dataset as ds

    schema = ds.Schema()
    for col in columns:
        schema.add_column(col.name, de_type=col.tf_type, shape=[col.length])
    return schema


def read_batches(path: PathLike, columns: Optional[Sequence[str]] = None, batch_size: int = 1024,
                 max_rows: Optional[int] = None) -> Iterator[Dict[str, np.ndarray]]:
    """Reads a record file in order, in batches of numpy arrays [n, length] (the last may be smaller).

    Args:
        path: one ``.mindrecord`` or ``.tfrecord`` file.
        columns: names to read (default: all, in the file's order).
        batch_size: rows per batch.
        max_rows: stop after this many rows (None: all).

    Yields:
        Dicts name -> array, dtypes as stored (TFRecord integers come out as int64).
    """
    path = Path(path)
    available = record_columns(path)
    by_name = {c.name: c for c in available}
    names = [c.name for c in available] if columns is None else list(columns)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"{path} has no column(s) {missing}; it has {list(by_name)}")
    if max_rows is not None and max_rows <= 0:
        return
    import mindspore.dataset as ds

    if record_format(path) == "mindrecord":
        if count_records(path) == 0:
            return
        dataset = ds.MindDataset(str(path), columns_list=names, shuffle=False, num_samples=max_rows,
                                 num_parallel_workers=min(2, os.cpu_count() or 1))
    else:
        if path.stat().st_size == 0:
            return
        dataset = ds.TFRecordDataset(str(path), mindspore_schema(available), columns_list=names,
                                     shuffle=False, num_samples=max_rows, num_parallel_workers=1)
    dataset = dataset.batch(batch_size, drop_remainder=False)
    for batch in dataset.create_dict_iterator(output_numpy=True, num_epochs=1):
        yield {n: batch[n] for n in names}


def read_records(path: PathLike, columns: Optional[Sequence[str]] = None,
                 max_rows: Optional[int] = None) -> Iterator[Dict[str, np.ndarray]]:
    """Reads a record file row by row, in file order: dicts name -> 1-D numpy array.

    Dtypes are as stored (MindRecord int32/float32, TFRecord int64/float32). For tools and tests;
    training uses ``src.data.dataset``.
    """
    for batch in read_batches(path, columns, max_rows=max_rows):
        names = list(batch)
        for values in zip(*(batch[n] for n in names)):
            yield dict(zip(names, values))


__all__ = [
    "FORMATS", "Column", "PRETRAINING_COLUMN_ORDER", "FINETUNE_COLUMN_ORDER", "RecordWriter",
    "count_records", "encode_examples", "finetune_columns", "iter_tfrecord_payloads", "mindspore_schema",
    "parse_example", "pretraining_columns", "read_batches", "read_records", "read_tfrecord_schema",
    "record_columns", "record_format", "tfrecord_schema_path", "write_tfrecord_schema",
]
