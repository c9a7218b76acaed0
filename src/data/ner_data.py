"""Named-entity recognition data: readers for the formats users bring, tag schemes, and the
records run_ner.py trains on.

Readers (each yields :class:`Sentence` objects, one token per word or per Chinese character):

* ``conll``: ``token TAG`` lines, space or tab separated, a blank line between sentences,
  ``-DOCSTART-`` lines skipped, CRLF accepted; one character per line for Chinese. Other column
  layouts (CoNLL-2003's ``token POS chunk TAG``) with ``token_column`` / ``tag_column``. A file
  whose lines have only the token is unlabelled (a test file).
* ``cluener``: CLUENER2020 JSON lines ``{"text", "label": {type: {entity: [[start, end], ...]}}}``
  (``end`` inclusive); test lines have no ``label``. Every span must match its text.
* ``msra``: MSRA NER (``char TAG``, BMES tags, CRLF), the built-in ``msra_ner`` sample data
  unless files are given.
* ``peoples_daily``: People's Daily 1998-01 (``word/pos`` tokens): ``nr`` (adjacent ones
  merged: surname + given name) is PER, ``ns`` LOC, ``nt`` ORG; every tenth paragraph (index
  8 mod 10) is dev and the next one test.

Tags in any scheme (IOB2, IOB1, IOBES/BILOU, BMES, also spelled ``B_PER``) are read, the source
scheme detected (or given), and converted to the target scheme (default IOB2). Invalid
sequences (an ``I-`` after ``O`` in IOB2) are counted and reported in ``dataset.json`` and the
log; they are converted the way seqeval's default (conlleval) mode reads them, and kept exactly
as they are when the source and target schemes are the same. The label list comes from the
training data (CLUENER: its ten types) or from ``labels``, ``O`` first (id 0).

Records: ``input_ids``, ``input_mask``, ``segment_ids``, ``label_ids``, ``label_mask``, int32
[S]. A token's label sits on its first WordPiece; its other pieces, [CLS], [SEP] and padding
have ``label_mask`` 0 and ``label_ids`` 0 (a valid id, so a CRF can read them). A token that
tokenizes to nothing (whitespace, a control character) becomes [UNK] so that every token is
predicted. A sentence longer than ``max_seq_length - 2`` pieces is split at token boundaries
into several rows (never truncated); ``SPLIT_sentences.jsonl`` maps rows back to sentences, so
evaluation merges the windows and scores every gold entity.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from src import tagging
from src.ner_metrics import CLUENER_TYPES
from src.data.dataset import file_entry
from src.data.output import atomic_directory, check_output_dir, sha256_file
from src.data.records import FORMATS, Column, RecordWriter, finetune_columns

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
DATASET_INFO = "dataset.json"
TASKS = ("conll", "cluener", "msra", "peoples_daily")
SPLITS = ("train", "dev", "test")
#: file names looked for in data_dir, per task and split (the first that exists is used)
FILE_NAMES = {
    "conll": {"train": ("train.txt", "train.tsv", "train.conll", "train.bio", "train.char.bmes", "train.bmes"),
              "dev": ("dev.txt", "valid.txt", "validation.txt", "dev.tsv", "dev.conll", "dev.bio",
                      "dev.char.bmes", "dev.bmes"),
              "test": ("test.txt", "test.tsv", "test.conll", "test.bio", "test.char.bmes", "test.bmes")},
    "cluener": {"train": ("train.json",), "dev": ("dev.json",), "test": ("test.json",)},
    "msra": {"train": ("msra_train.txt", "train.txt"), "dev": ("dev.txt",), "test": ("msra_test.txt", "test.txt")},
    "peoples_daily": {"train": ("199801.txt",), "dev": ("199801.txt",), "test": ("199801.txt",)},
}
PEOPLES_DAILY_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
METRICS = ("f1", "precision", "recall", "token_accuracy")
CLUENER_METRICS = ("f1", "precision", "recall", "cluener_macro_f1", "token_accuracy")
CHUNK_SENTENCES = 4096


class NerDataError(ValueError):
    """Bad NER input or options; the message names the file, line and value."""


@dataclass
class Sentence:
    """One sentence of a NER file.

    Attributes:
        id: a stable id (``SPLIT-N``, or the CLUENER line's ``id``).
        tokens: words or characters.
        tags: one tag per token as read (None for unlabelled input).
        path: the file it came from.
        lines: the 1-based line of each token (CLUENER, People's Daily: the sentence's line).
        text: the original text (CLUENER: tokens are its characters).
    """

    id: str
    tokens: List[str]
    tags: Optional[List[str]]
    path: Path
    lines: List[int]
    text: Optional[str] = None

    def where(self, i: int = 0) -> str:
        line = self.lines[i] if self.lines else "?"
        return f"{self.path}:{line}"


# --------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------
_FIELDS = re.compile(r"[ \t]+")


def _read_lines(path: Path) -> List[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise NerDataError(f"{path} is not UTF-8 text: {err}") from None
    return text.splitlines()


def read_conll(path: PathLike, *, token_column: int = 0, tag_column: Optional[int] = None,
               split: str = "") -> List[Sentence]:
    """Sentences of a CoNLL-style file.

    Args:
        path: the file.
        token_column: 0-based column of the token.
        tag_column: 0-based column of the tag (negative counts from the end); None: the file must
            have exactly two columns ``token TAG`` (or one column: an unlabelled file).
        split: the split name used in sentence ids.

    Raises:
        NerDataError: an empty file; a line with no tag, or with another number of columns than
            expected (named with its line number and content).
    """
    path = Path(path)
    lines = _read_lines(path)
    sentences: List[Sentence] = []
    tokens: List[str] = []
    tags: List[str] = []
    numbers: List[int] = []
    width: Optional[int] = None
    labelled = True

    def flush() -> None:
        if tokens:
            sentences.append(Sentence(f"{split or path.stem}-{len(sentences)}", list(tokens),
                                      list(tags) if labelled else None, path, list(numbers)))
        tokens.clear()
        tags.clear()
        numbers.clear()

    for number, raw in enumerate(lines, 1):
        line = raw.strip(" \t\r\n")
        if not line:
            flush()
            continue
        fields = _FIELDS.split(line)
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        if width is None:
            width = len(fields)
            if tag_column is None:
                if width == 1:
                    labelled = False
                elif width != 2:
                    raise NerDataError(f"{path}:{number}: {width} columns {fields!r:.120}; expected 'token TAG' "
                                       "(for other layouts, e.g. CoNLL-2003's 'token POS chunk TAG', set "
                                       "--token_column and --tag_column)")
        if len(fields) != width:
            if width == 2 and len(fields) == 1:
                raise NerDataError(f"{path}:{number}: no tag after token {fields[0]!r} (expected 'token TAG')")
            raise NerDataError(f"{path}:{number}: {len(fields)} columns {fields!r:.120}, but the file's first "
                               f"line has {width}")
        try:
            token = fields[token_column]
            tag = fields[tag_column if tag_column is not None else -1] if labelled else ""
        except IndexError:
            raise NerDataError(f"{path}:{number}: no column {tag_column if tag_column is not None else token_column}"
                               f" in {fields!r:.120}") from None
        tokens.append(token)
        tags.append(tag)
        numbers.append(number)
    flush()
    if not sentences:
        raise NerDataError(f"{path} has no sentences (the file is empty or only blank/-DOCSTART- lines)")
    return sentences


def _cluener_tags(text: str, label: Any, path: Path, number: int) -> List[str]:
    """IOB2 tags of the characters of ``text`` from a CLUENER ``label`` object."""
    if not isinstance(label, dict):
        raise NerDataError(f"{path}:{number}: 'label' must be an object {{type: {{entity: [[start, end]]}}}}, "
                           f"got {label!r:.80}")
    tags = ["O"] * len(text)
    for kind, entities in label.items():
        if not isinstance(entities, dict):
            raise NerDataError(f"{path}:{number}: label {kind!r} must map entity texts to spans, got "
                               f"{entities!r:.80}")
        for entity, spans in entities.items():
            if not isinstance(spans, list):
                raise NerDataError(f"{path}:{number}: spans of {kind} {entity!r} must be a list, got {spans!r:.80}")
            for span in spans:
                if not (isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)
                        and 0 <= span[0] <= span[1] < len(text)):
                    raise NerDataError(f"{path}:{number}: span {span!r} of {kind} {entity!r} is not [start, end] "
                                       f"inside the text (length {len(text)})")
                start, end = span
                if text[start:end + 1] != entity:
                    raise NerDataError(f"{path}:{number}: {kind} entity {entity!r} at [{start}, {end}], but the "
                                       f"text there is {text[start:end + 1]!r}")
                if any(t != "O" for t in tags[start:end + 1]):
                    raise NerDataError(f"{path}:{number}: {kind} entity {entity!r} at [{start}, {end}] overlaps "
                                       "another entity")
                tags[start] = f"B-{kind}"
                for i in range(start + 1, end + 1):
                    tags[i] = f"I-{kind}"
    return tags


def read_cluener(path: PathLike, *, split: str = "") -> List[Sentence]:
    """Sentences of a CLUENER2020 JSON-lines file (characters as tokens, IOB2 tags).

    Raises:
        NerDataError: an empty file, a line that is not a JSON object with a string ``text``,
            a span outside the text or whose text does not match, overlapping spans, or a file
            that mixes lines with and without ``label``.
    """
    path = Path(path)
    sentences: List[Sentence] = []
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise NerDataError(f"{path}:{number}: not JSON ({err.msg}): {line!r:.80}") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise NerDataError(f"{path}:{number}: expected an object with a string 'text', got {line!r:.80}")
        text = row["text"]
        tags = _cluener_tags(text, row["label"], path, number) if "label" in row else None
        if sentences and (tags is None) != (sentences[0].tags is None):
            raise NerDataError(f"{path}:{number}: {'no' if tags is None else 'a'} 'label', but line "
                               f"{sentences[0].lines[0]} "
                               f"{'has one' if tags is None else 'has none'} (a file is labelled or not)")
        sentence_id = str(row.get("id", len(sentences)))
        sentences.append(Sentence(sentence_id, list(text), tags, path, [number] * max(len(text), 1), text=text))
    if not sentences:
        raise NerDataError(f"{path} has no sentences (the file is empty)")
    return sentences


def read_peoples_daily(path: PathLike, *, split: str = "train") -> List[Sentence]:
    """The ``split`` of People's Daily 1998-01 paragraphs (characters, IOB2 PER/LOC/ORG tags).

    Paragraph ``i`` (0-based, non-empty lines) is dev when ``i % 10 == 8``, test when
    ``i % 10 == 9``, train otherwise.
    """
    path = Path(path)
    wanted = {"train": range(0, 8), "dev": (8,), "test": (9,)}[split]
    sentences = []
    index = -1
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        index += 1
        if index % 10 not in wanted:
            continue
        chars: List[str] = []
        tags: List[str] = []
        previous = None
        for item in line.split():
            word, slash, pos = item.rpartition("/")
            if not slash or not word:
                raise NerDataError(f"{path}:{number}: token {item!r} is not word/pos")
            kind = PEOPLES_DAILY_TYPES.get(pos)
            inside = kind is not None and kind == "PER" and previous == "nr"  # surname + given name
            for j, char in enumerate(word):
                chars.append(char)
                if kind is None:
                    tags.append("O")
                else:
                    tags.append(f"I-{kind}" if (j or inside) else f"B-{kind}")
            previous = pos
        if chars:
            sentences.append(Sentence(f"{split}-{len(sentences)}", chars, tags, path, [number] * len(chars)))
    if not sentences:
        raise NerDataError(f"{path} has no People's Daily paragraphs")
    return sentences


# --------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------
def split_files(task: str, data_dir: Optional[PathLike] = None,
                files: Optional[Dict[str, str]] = None) -> Dict[str, Path]:
    """The file of each split: ``files`` (explicit), else the first existing name of
    :data:`FILE_NAMES` in ``data_dir``, else (msra, peoples_daily) the built-in sample data."""
    if task not in TASKS:
        raise NerDataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    found: Dict[str, Path] = {}
    for split, name in (files or {}).items():
        if name:
            path = Path(name)
            if not path.is_file():
                raise NerDataError(f"{split} file {path} does not exist")
            found[split] = path
    if found:
        return found
    if not data_dir:
        if task not in ("msra", "peoples_daily"):
            raise NerDataError(f"task {task} needs --data_dir (or --train_file/--dev_file/--test_file)")
        from src.sample_data import fetch

        data_dir = fetch("msra_ner" if task == "msra" else "peoples_daily")
        data_dir = data_dir if Path(data_dir).is_dir() else Path(data_dir).parent
    root = Path(data_dir)
    if not root.is_dir():
        raise NerDataError(f"data_dir {root} is not a directory")
    for split, names in FILE_NAMES[task].items():
        for name in names:
            if (root / name).is_file():
                found[split] = root / name
                break
    if "train" not in found and "test" not in found and "dev" not in found:
        wanted = ", ".join(n for names in FILE_NAMES[task].values() for n in names)
        raise NerDataError(f"no {task} file in {root} (looked for {wanted})")
    return found


def read_split(task: str, split: str, path: Path, token_column: int = 0,
               tag_column: Optional[int] = None) -> List[Sentence]:
    if task == "cluener":
        return read_cluener(path, split=split)
    if task == "peoples_daily":
        return read_peoples_daily(path, split=split)
    return read_conll(path, token_column=token_column, tag_column=tag_column, split=split)


# --------------------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------------------
def _check_tags(sentences: Sequence[Sentence]) -> None:
    """Every tag fits some scheme (the error names file, line and tag)."""
    for sentence in sentences:
        for i, tag in enumerate(sentence.tags or ()):
            try:
                tagging.split_tag(tag)
            except ValueError:
                raise NerDataError(f"{sentence.where(i)}: tag {tag!r} fits no tag scheme (expected O, or "
                                   "B-/I-/E-/S-/L-/U-/M- (or B_...) followed by a type)") from None


def _convert(sentence: Sentence, source: str, target: str) -> List[str]:
    if source == target:  # kept as read, only spelled canonically (B_PER -> B-PER)
        return [tagging.canonical_tag(t) for t in sentence.tags]
    return tagging.convert_tags(sentence.tags, source, target)


def read_labels_file(path: PathLike) -> List[str]:
    labels = [line.strip() for line in _read_lines(Path(path)) if line.strip()]
    if not labels:
        raise NerDataError(f"labels file {path} is empty")
    return labels


def _label_list(given: Sequence[str], types: Iterable[str], scheme: str, where: str) -> List[str]:
    if not given:
        return tagging.label_list(sorted(set(types)), scheme)
    labels = [tagging.canonical_tag(t) for t in given]
    duplicates = sorted({t for t in labels if labels.count(t) > 1})
    if duplicates:
        raise NerDataError(f"{where}: duplicated labels {', '.join(duplicates)}")
    if "O" not in labels:
        raise NerDataError(f"{where}: the label list has no 'O' ({', '.join(labels)})")
    return ["O", *[t for t in labels if t != "O"]]


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------
def record_columns(max_seq_length: int) -> List[Column]:
    """``input_ids``, ``input_mask``, ``segment_ids``, ``label_ids``, ``label_mask``: int32 [S]."""
    return finetune_columns(max_seq_length, [Column("label_mask", "int32", max_seq_length)],
                            label_length=max_seq_length)


def windows(piece_counts: Sequence[int], capacity: int) -> List[Tuple[int, int]]:
    """Token ranges ``[start, end)`` of consecutive windows of at most ``capacity`` pieces each
    (a token longer than ``capacity`` gets a window of its own and is cut to ``capacity``)."""
    out: List[Tuple[int, int]] = []
    start = used = 0
    for i, count in enumerate(piece_counts):
        count = min(count, capacity)
        if used + count > capacity:
            out.append((start, i))
            start, used = i, 0
        used += count
    out.append((start, len(piece_counts)))
    return out


def _piece_table(sentences: Sequence[Sentence], tokenizer: Any) -> Dict[str, List[int]]:
    """WordPiece ids of every distinct token ([UNK] for a token that tokenizes to nothing)."""
    unique = sorted({t for s in sentences for t in s.tokens})
    table = dict(zip(unique, tokenizer.ids_batch(unique)))
    unk = tokenizer.unk_id
    return {t: ids or [unk] for t, ids in table.items()}


def convert_sentences(sentences: Sequence[Sentence], tags: Sequence[Optional[List[str]]], tokenizer: Any,
                      max_seq_length: int, label_ids: Dict[str, int],
                      pieces: Dict[str, List[int]]) -> Tuple[Dict[str, np.ndarray], List[List[Tuple[int, int]]]]:
    """Rows of ``sentences`` (with their converted ``tags``) and each sentence's windows."""
    capacity = max_seq_length - 2
    rows_ids, rows_labels, rows_mask, all_windows = [], [], [], []
    for sentence, sentence_tags in zip(sentences, tags):
        token_pieces = [pieces[t][:capacity] for t in sentence.tokens]
        spans = windows([len(p) for p in token_pieces], capacity)
        all_windows.append(spans)
        for start, end in spans:
            ids = np.zeros(max_seq_length, np.int32)
            labels = np.zeros(max_seq_length, np.int32)
            mask = np.zeros(max_seq_length, np.int32)
            ids[0] = tokenizer.cls_id
            position = 1
            for i in range(start, end):
                if sentence_tags is not None:
                    labels[position] = label_ids[sentence_tags[i]]
                mask[position] = 1
                ids[position:position + len(token_pieces[i])] = token_pieces[i]
                position += len(token_pieces[i])
            ids[position] = tokenizer.sep_id
            rows_ids.append(ids)
            rows_labels.append(labels)
            rows_mask.append(mask)
    input_ids = np.stack(rows_ids)
    features = {"input_ids": input_ids, "input_mask": (input_ids != 0).astype(np.int32),
                "segment_ids": np.zeros_like(input_ids), "label_ids": np.stack(rows_labels),
                "label_mask": np.stack(rows_mask)}
    features["input_mask"][:, 0] = 1
    return features, all_windows


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
@dataclass
class NerTask:
    """What to read and how: the arguments of :func:`write_ner_dataset` about the input."""

    task: str
    files: Dict[str, Path]
    token_column: int = 0
    tag_column: Optional[int] = None
    source_scheme: str = ""
    scheme: str = "IOB2"
    labels: List[str] = field(default_factory=list)


def _entity_counts(tags: Iterable[List[str]], scheme: str) -> Dict[str, int]:
    counts: collections.Counter = collections.Counter()
    for sentence_tags in tags:
        counts.update(kind for kind, _, _ in tagging.get_chunks(sentence_tags, scheme))
    return dict(sorted(counts.items()))


def write_ner_dataset(spec: NerTask, tokenizer: Any, output_dir: PathLike, max_seq_length: int = 128, *,
                      fmt: str = "mindrecord", overwrite: bool = False, progress: bool = False) -> Dict[str, Any]:
    """Read every split of ``spec``, convert its tags, and write records, ``SPLIT_sentences.jsonl``
    and ``dataset.json`` into ``output_dir``, all or nothing.

    Returns:
        The content of ``dataset.json``: ``task``, ``labels`` (``O`` first), ``scheme``,
        ``source_scheme``, ``metrics``, ``main_metric``, ``max_seq_length``, vocab facts, and per
        split ``file``, ``sentences_file``, ``examples`` (rows), ``sentences``,
        ``split_sentences`` (sentences over several rows), ``tokens``, ``entities`` per type,
        ``invalid_sentences`` / ``invalid_tags`` (in the source scheme), ``has_labels``, ``source``.

    Raises:
        NerDataError: bad input or options; the message names the file, line and value.
    """
    if fmt not in FORMATS:
        raise NerDataError(f"record format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not isinstance(max_seq_length, int) or max_seq_length < 3:
        raise NerDataError(f"max_seq_length must be at least 3 ([CLS] token [SEP]), got {max_seq_length}")
    try:
        target = tagging.canonical_scheme(spec.scheme)
    except ValueError as err:
        raise NerDataError(f"scheme: {err}") from None
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite, DATASET_INFO, NerDataError)
    splits = {split: read_split(spec.task, split, path, spec.token_column, spec.tag_column)
              for split, path in spec.files.items()}
    labelled = {s: v for s, v in splits.items() if v[0].tags is not None}
    for sentences in labelled.values():
        _check_tags(sentences)
    if spec.source_scheme:
        try:
            source = tagging.canonical_scheme(spec.source_scheme)
        except ValueError as err:
            raise NerDataError(f"source_scheme: {err}") from None
    elif spec.task == "msra":
        source = "BMES"
    elif labelled:
        source = tagging.detect_scheme(t for v in labelled.values() for s in v for t in s.tags)
    else:
        source = target
    converted = {s: [_convert(x, source, target) if x.tags is not None else None for x in v]
                 for s, v in splits.items()}
    train_tags = converted.get("train") or [t for v in converted.values() for t in v if t is not None]
    types = {tagging.split_tag(t)[1] for tags in train_tags if tags for t in tags if t != "O"}
    if spec.task == "cluener":
        types |= set(CLUENER_TYPES)
    labels = _label_list(spec.labels, types, target, "labels")
    label_ids = {label: i for i, label in enumerate(labels)}
    for split, sentences in splits.items():
        for sentence, tags in zip(sentences, converted[split]):
            for i, tag in enumerate(tags or ()):
                if tag not in label_ids:
                    original = sentence.tags[i]
                    raise NerDataError(f"{sentence.where(i)}: tag {original!r} is not in the label list "
                                       f"({', '.join(labels)}){' from the train split' if not spec.labels else ''}")

    with atomic_directory(output_dir) as tmp:
        split_info = {}
        for split, sentences in splits.items():
            split_info[split] = _write_split(split, sentences, converted[split], source, target, tokenizer,
                                             max_seq_length, label_ids, tmp, fmt, progress)
        info = {
            "task": "ner",
            "input_format": spec.task,
            "labels": labels,
            "scheme": target,
            "source_scheme": source,
            "metrics": list(CLUENER_METRICS if spec.task == "cluener" else METRICS),
            "main_metric": "f1",
            "max_seq_length": max_seq_length,
            "vocab_size": tokenizer.vocab_size,
            "vocab_sha256": sha256_file(tokenizer.vocab_file),
            "do_lower_case": tokenizer.do_lower_case,
            "format": fmt,
            "splits": split_info,
        }
        (tmp / DATASET_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return info


def _write_split(split: str, sentences: List[Sentence], tags: List[Optional[List[str]]], source: str, target: str,
                 tokenizer: Any, max_seq_length: int, label_ids: Dict[str, int], out: Path, fmt: str,
                 progress: bool) -> Dict[str, Any]:
    pieces = _piece_table(sentences, tokenizer)
    record_name = f"{split}.{fmt}"
    sentences_name = f"{split}_sentences.jsonl"
    rows = split_sentences = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(sentences), unit="sent", desc=f"ner {split}", leave=False)
    try:
        with RecordWriter(out / record_name, record_columns(max_seq_length), fmt) as writer, \
                open(out / sentences_name, "w", encoding="utf-8", newline="\n") as index:
            for start in range(0, len(sentences), CHUNK_SENTENCES):
                chunk = sentences[start:start + CHUNK_SENTENCES]
                features, chunk_windows = convert_sentences(chunk, tags[start:start + CHUNK_SENTENCES], tokenizer,
                                                            max_seq_length, label_ids, pieces)
                writer.write(features)
                for sentence, sentence_tags, spans in zip(chunk, tags[start:start + CHUNK_SENTENCES], chunk_windows):
                    entry = {"id": sentence.id, "tokens": sentence.tokens, "tags": sentence_tags,
                             "rows": [[rows + k, a, b] for k, (a, b) in enumerate(spans)]}
                    if sentence.text is not None and sentence.text != "".join(sentence.tokens):
                        entry["text"] = sentence.text
                    index.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    rows += len(spans)
                    split_sentences += len(spans) > 1
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    has_labels = sentences[0].tags is not None
    info: Dict[str, Any] = {
        **file_entry(out / record_name),  # file, bytes (and db_bytes): checked by the runners
        "sentences_file": sentences_name,
        "source": sentences[0].path.name,
        "examples": rows,
        "sentences": len(sentences),
        "split_sentences": split_sentences,
        "tokens": sum(len(s.tokens) for s in sentences),
        "has_labels": has_labels,
    }
    if has_labels:
        invalid = [tagging.count_invalid(s.tags, source) for s in sentences]
        info["entities"] = _entity_counts((t for t in tags if t is not None), target)
        info["invalid_sentences"] = sum(n > 0 for n in invalid)
        info["invalid_tags"] = sum(invalid)
        if info["invalid_tags"]:
            first = next(s for s, n in zip(sentences, invalid) if n)
            logger.warning("%s: %d sentences (%d tags) break the %s scheme, e.g. the sentence at %s; they are read "
                           "as seqeval's default mode reads them", split, info["invalid_sentences"],
                           info["invalid_tags"], source, first.where())
    if split_sentences:
        logger.info("%s: %d sentences longer than max_seq_length %d are split over several rows (every entity "
                    "is still scored)", split, split_sentences, max_seq_length)
    return info


# --------------------------------------------------------------------------------------
# Reading dataset.json and the sentence index
# --------------------------------------------------------------------------------------
def load_ner_info(path: PathLike) -> Dict[str, Any]:
    """The ``dataset.json`` of :func:`write_ner_dataset` (checked for the keys run_ner.py reads)."""
    path = Path(path)
    file = path / DATASET_INFO if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: make the NER records with tools/create_ner_data.py")
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NerDataError(f"{file} is not valid JSON: {err}") from None
    for key, tp in (("task", str), ("labels", list), ("scheme", str), ("metrics", list), ("main_metric", str),
                    ("max_seq_length", int), ("splits", dict)):
        if not isinstance(info.get(key), tp):
            raise NerDataError(f"{file}: {key!r} must be {tp.__name__}, got {info.get(key)!r:.80}")
    if info["task"] != "ner":
        raise NerDataError(f"{file} describes a {info['task']!r} dataset, not NER records from "
                           "tools/create_ner_data.py")
    if not info["labels"] or info["labels"][0] != "O":
        raise NerDataError(f"{file}: the label list must start with 'O', got {info['labels']!r:.80}")
    for split, split_info in info["splits"].items():
        for key in ("file", "sentences_file", "examples", "sentences", "has_labels"):
            if key not in split_info:
                raise NerDataError(f"{file}: splits.{split}.{key} is missing")
    return info


def read_sentence_index(path: PathLike) -> List[Dict[str, Any]]:
    """The entries of a ``SPLIT_sentences.jsonl``: ``id``, ``tokens``, ``tags``, ``rows``
    (``[row, start, end)`` per window), optionally ``text``."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def merge_windows(entries: Sequence[Dict[str, Any]], row_predictions: Sequence[np.ndarray]) -> List[List[int]]:
    """Per-sentence label ids from per-row predictions at the label-mask positions.

    Args:
        entries: the sentence index.
        row_predictions: for each row, the predicted label ids of its tokens in order (the
            positions where ``label_mask`` is 1).
    """
    out = []
    for entry in entries:
        ids: List[int] = []
        for row, start, end in entry["rows"]:
            predicted = row_predictions[row]
            if len(predicted) != end - start:
                raise ValueError(f"row {row} of sentence {entry['id']} has {len(predicted)} labelled positions but "
                                 f"covers {end - start} tokens")
            ids.extend(int(x) for x in predicted)
        out.append(ids)
    return out


__all__ = ["DATASET_INFO", "NerDataError", "NerTask", "Sentence", "TASKS", "convert_sentences", "load_ner_info",
           "merge_windows", "read_cluener", "read_labels_file", "read_conll", "read_peoples_daily",
           "read_sentence_index", "record_columns", "split_files", "windows", "write_ner_dataset"]
