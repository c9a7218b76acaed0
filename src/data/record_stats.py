"""Looking into pretraining records: decode a record back to tokens, and aggregate statistics.

Used by ``tools/view_records.py``; ``compute_record_stats`` is also what tests of the instance
generator check (masking rates, NSP balance, sequence lengths, ids outside the vocabulary).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from src.data.records import PathLike, read_batches, record_columns

VocabArg = Union[PathLike, Mapping[str, int], Any]  # a vocab file, token -> id, or a FullTokenizer

MASK_TOKEN = "[MASK]"
SHORT_MARGIN = 10  # a record is "short" if it has fewer than max_seq_length - SHORT_MARGIN real tokens

PRETRAINING_NEEDED = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
                      "masked_lm_weights", "next_sentence_labels")


def load_vocab_arg(vocab: VocabArg) -> Dict[str, int]:
    """Token -> id from a vocab file path, a mapping, or an object with a ``vocab`` mapping."""
    if isinstance(vocab, Mapping):
        return dict(vocab)
    if isinstance(getattr(vocab, "vocab", None), Mapping):
        return dict(vocab.vocab)
    from src.tokenization import load_vocab

    return load_vocab(os.fspath(vocab))


def compute_record_stats(files: Union[PathLike, Sequence[PathLike]], vocab: VocabArg) -> Dict[str, Any]:
    """Aggregate statistics over all pretraining records of the given files.

    Args:
        files: record files (anything ``find_record_files`` accepts).
        vocab: vocab file, token -> id mapping, or ``FullTokenizer``; gives ``vocab_size`` and
            the id of ``[MASK]``.

    Returns:
        A JSON-serialisable dict:
        ``files``, ``records``, ``max_seq_length`` (list of distinct values), ``max_predictions_per_seq``,
        ``vocab_size``,
        ``mean_real_tokens`` (mean of ``sum(input_mask)``),
        ``short_share`` (share of records with fewer than max_seq_length - 10 real tokens),
        ``mean_masked`` (masked positions per record, ``masked_lm_weights > 0``),
        ``masked_per_real_token`` (masked positions / real tokens),
        ``mask_share``, ``kept_share``, ``random_share`` (of the masked positions: the input shows
        ``[MASK]``, the original token, or another token),
        ``random_next_share`` (``next_sentence_labels == 1``, RandomNext),
        ``ids_out_of_vocab`` (ids >= vocab_size or < 0 among real tokens of ``input_ids`` and real
        positions of ``masked_lm_ids``).
        Shares are 0.0 when their denominator is 0.
    """
    from src.data.dataset import find_record_files

    paths = find_record_files(files)
    token_ids = load_vocab_arg(vocab)
    vocab_size = max(token_ids.values()) + 1 if token_ids else 0
    mask_id = token_ids.get(MASK_TOKEN, -1)
    records = real = short = masked = as_mask = kept = random_next = out_of_vocab = 0
    seq_lengths, pred_lengths = set(), set()
    for path in paths:
        columns = {c.name: c for c in record_columns(path)}
        missing = [n for n in PRETRAINING_NEEDED if n not in columns]
        if missing:
            raise ValueError(f"{path} is not a pretraining record file: no column(s) {', '.join(missing)}")
        seq_len = columns["input_ids"].length
        seq_lengths.add(seq_len)
        pred_lengths.add(columns["masked_lm_ids"].length)
        for b in read_batches(path, PRETRAINING_NEEDED, batch_size=4096):
            ids = b["input_ids"].astype(np.int64)
            mask = b["input_mask"] > 0
            n = len(ids)
            lengths = mask.sum(axis=1)
            records += n
            real += int(lengths.sum())
            short += int((lengths < seq_len - SHORT_MARGIN).sum())
            weights = b["masked_lm_weights"] > 0
            positions = np.clip(b["masked_lm_positions"].astype(np.int64), 0, seq_len - 1)
            originals = b["masked_lm_ids"].astype(np.int64)
            shown = np.take_along_axis(ids, positions, axis=1)
            masked += int(weights.sum())
            as_mask += int((weights & (shown == mask_id)).sum())
            kept += int((weights & (shown == originals) & (shown != mask_id)).sum())
            random_next += int((b["next_sentence_labels"].reshape(n, -1)[:, 0] == 1).sum())
            out_of_vocab += int((mask & ((ids >= vocab_size) | (ids < 0))).sum())
            out_of_vocab += int((weights & ((originals >= vocab_size) | (originals < 0))).sum())

    def share(a: int, b: int) -> float:
        return a / b if b else 0.0

    return {
        "files": [str(p) for p in paths],
        "records": records,
        "max_seq_length": sorted(seq_lengths),
        "max_predictions_per_seq": sorted(pred_lengths),
        "vocab_size": vocab_size,
        "mean_real_tokens": share(real, records),
        "short_share": share(short, records),
        "mean_masked": share(masked, records),
        "masked_per_real_token": share(masked, real),
        "mask_share": share(as_mask, masked),
        "kept_share": share(kept, masked),
        "random_share": share(masked - as_mask - kept, masked),
        "random_next_share": share(random_next, records),
        "ids_out_of_vocab": out_of_vocab,
    }


STAT_LABELS = (
    ("records", "records"),
    ("max_seq_length", "max_seq_length"),
    ("max_predictions_per_seq", "max_predictions_per_seq"),
    ("vocab_size", "vocab size"),
    ("mean_real_tokens", "mean real tokens per record"),
    ("short_share", f"records shorter than max_seq_length - {SHORT_MARGIN}"),
    ("mean_masked", "mean masked positions per record"),
    ("masked_per_real_token", "masked positions / real tokens"),
    ("mask_share", "masked positions shown as [MASK]"),
    ("kept_share", "masked positions kept (original token)"),
    ("random_share", "masked positions replaced by a random token"),
    ("random_next_share", "NSP RandomNext share"),
    ("ids_out_of_vocab", "token ids >= vocab size (or < 0)"),
)
_PERCENT = {"short_share", "mask_share", "kept_share", "random_share", "random_next_share"}


def format_stats_table(stats: Mapping[str, Any]) -> str:
    """The statistics as an aligned two-column text table."""
    width = max(len(label) for _, label in STAT_LABELS)
    lines = [f"{len(stats['files'])} file(s)"]
    for key, label in STAT_LABELS:
        value = stats[key]
        if key in _PERCENT:
            text = f"{100 * value:.2f} %"
        elif isinstance(value, float):
            text = f"{value:.4f}" if key == "masked_per_real_token" else f"{value:.2f}"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        lines.append(f"{label:<{width}}  {text}")
    return "\n".join(lines)


def format_record(row: Mapping[str, np.ndarray], inv_vocab: Mapping[int, str], *,
                  mask_token: str = MASK_TOKEN, title: str = "") -> str:
    """One record decoded to tokens, for reading.

    Each segment (a run of equal ``segment_ids`` among the real tokens) is one line, ``A:`` for
    segment 0 and ``B:`` for segment 1. A masked position shows what the model sees and, in
    braces, the token to predict: ``[MASK]{cat}`` (replaced by [MASK]), ``dog→{cat}`` (replaced
    by a random token), ``{cat}`` (kept). Ids outside the vocab show as ``<id 30000>``.
    Records without masked-LM or NSP columns (fine-tuning) show what they have.
    """
    def token(i: int) -> str:
        return inv_vocab.get(int(i), f"<id {int(i)}>")

    ids = np.asarray(row["input_ids"]).reshape(-1)
    mask = np.asarray(row["input_mask"]).reshape(-1) > 0 if "input_mask" in row else ids != 0
    segments = np.asarray(row["segment_ids"]).reshape(-1) if "segment_ids" in row else np.zeros_like(ids)
    real = np.nonzero(mask)[0]
    targets: Dict[int, int] = {}
    if "masked_lm_positions" in row and "masked_lm_ids" in row:
        weights = (np.asarray(row["masked_lm_weights"]).reshape(-1) > 0 if "masked_lm_weights" in row
                   else np.ones(len(np.asarray(row["masked_lm_ids"]).reshape(-1)), bool))
        for pos, orig, w in zip(np.asarray(row["masked_lm_positions"]).reshape(-1),
                                np.asarray(row["masked_lm_ids"]).reshape(-1), weights):
            if w:
                targets[int(pos)] = int(orig)
    head = [title] if title else []
    if "next_sentence_labels" in row:
        label = int(np.asarray(row["next_sentence_labels"]).reshape(-1)[0])
        head.append({0: "IsNext", 1: "RandomNext"}.get(label, f"NSP label {label}"))
    head.append(f"{len(real)}/{len(ids)} tokens")
    if targets:
        head.append(f"{len(targets)} masked")
    if "label_ids" in row:
        labels = np.asarray(row["label_ids"]).reshape(-1)
        head.append(f"label_ids {labels[:len(real)].tolist() if len(labels) > 1 else int(labels[0])}")
    lines = [" | ".join(head)]
    words: List[str] = []
    current: Optional[int] = None
    for p in real.tolist():
        seg = int(segments[p])
        if current is not None and seg != current:
            lines.append(_segment_line(current, words))
            words = []
        current = seg
        shown = int(ids[p])
        if p in targets:
            orig = targets[p]
            if token(shown) == mask_token:
                words.append(f"{mask_token}{{{token(orig)}}}")
            elif shown == orig:
                words.append(f"{{{token(orig)}}}")
            else:
                words.append(f"{token(shown)}→{{{token(orig)}}}")
        else:
            words.append(token(shown))
    if current is not None:
        lines.append(_segment_line(current, words))
    outside = sorted(p for p in targets if p >= len(ids) or not mask[p])
    if outside:
        lines.append(f"  !! masked positions outside the real tokens: {outside}")
    return "\n".join(lines)


def _segment_line(segment: int, words: List[str]) -> str:
    name = {0: "A", 1: "B"}.get(segment, str(segment))
    return f"  {name}: " + " ".join(words)


__all__ = ["compute_record_stats", "format_record", "format_stats_table", "load_vocab_arg"]
