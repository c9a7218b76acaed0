"""Pretraining instances with the semantics of Google's ``create_pretraining_data.py``, vectorized.

Google builds each instance in Python, token by token. Here a chunk of documents is one flat
token array, and an instance is four integers: the token ranges of segment A and segment B.

1. :func:`nsp_spans` walks the documents exactly as Google's ``create_instances_from_document``
   does (target length with ``short_seq_prob``, segments accumulated to the target, a random
   split point, B from a random other document 50% of the time with unused segments put back,
   truncation of the longer side from a random end) but only moves integers. Truncation is done in
   closed form: Google's loop always trims the longer side (B on ties), so the final lengths are
   determined, and the front/back choice per trimmed token is a fair coin, i.e. a binomial count.
2. :func:`assemble` turns all spans of a chunk into ``[CLS] A [SEP] B [SEP]`` rows at once.
3. :func:`mask_tokens` applies Google's ``create_masked_lm_predictions`` to all rows at once:
   ``num_to_predict = min(max_predictions, max(1, round(len * masked_lm_prob)))``, candidate words
   in uniformly random order, a word skipped if it would overshoot, and each chosen token replaced
   by [MASK] 80%, kept 10%, a random vocabulary id 10%. With whole-word masking a word is all its
   tokens (word starts come from ``##`` pieces, a segmenter such as jieba, or a reference file),
   and the 80/10/10 choice is made once per word, not per piece (google-research/bert#910).

The distributions equal Google's; the random draws differ, so records are not byte-identical to
Google's for the same seed. A line-by-line mode (:func:`line_spans`) serves continued pretraining:
``[CLS] line [SEP]`` without NSP, optionally packing consecutive lines into full records.
"""
from __future__ import annotations

import bisect
import itertools
import random
from array import array
from dataclasses import dataclass, field, fields
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class MaskingParams:
    """The generation parameters (Google's flags of the same names).

    Attributes:
        max_seq_length: length of every record.
        max_predictions_per_seq: masked positions per record at most.
        masked_lm_prob: share of tokens to mask.
        short_seq_prob: probability of a shorter target length for a document.
        whole_word_mask: mask all tokens of a word together.
        cls_id, sep_id, mask_id: special token ids.
        vocab_size: random replacements are drawn uniformly from ``[0, vocab_size)``, as Google does.
    """

    max_seq_length: int
    max_predictions_per_seq: int
    masked_lm_prob: float
    short_seq_prob: float
    whole_word_mask: bool
    cls_id: int
    sep_id: int
    mask_id: int
    vocab_size: int

    def __post_init__(self) -> None:
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length must be at least 5, got {self.max_seq_length}")
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise ValueError(f"masked_lm_prob must be in (0, 1), got {self.masked_lm_prob}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ValueError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")
        if self.max_predictions_per_seq < 1:
            raise ValueError(f"max_predictions_per_seq must be positive, got {self.max_predictions_per_seq}")


@dataclass
class GenerationStats:
    """Counts kept while generating; summed across chunks, workers and ranks."""

    documents: int = 0
    sentences: int = 0
    instances: int = 0
    tokens: int = 0  # real tokens in records, [CLS]/[SEP] included
    masked: int = 0
    masked_as_mask: int = 0
    masked_kept: int = 0
    masked_random: int = 0
    random_next: int = 0
    forced_random_next: int = 0  # a single segment was available, so B had to be random (Google too)
    short_targets: int = 0  # documents (per dupe round) that drew a short target length
    split_lines: int = 0  # line-by-line mode: lines longer than a record, split into several

    def merge(self, other: "GenerationStats") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["masked_share_of_tokens"] = self.masked / self.tokens if self.tokens else 0.0
        if self.masked:
            d["mask_share"] = self.masked_as_mask / self.masked
            d["kept_share"] = self.masked_kept / self.masked
            d["random_share"] = self.masked_random / self.masked
        d["random_next_share"] = self.random_next / self.instances if self.instances else 0.0
        free = self.instances - self.forced_random_next
        d["random_next_share_unforced"] = (self.random_next - self.forced_random_next) / free if free else 0.0
        return d


@dataclass
class TokenizedChunk:
    """The documents of one chunk as flat arrays.

    Attributes:
        tokens: int32 [T], every sentence's token ids, concatenated.
        word_starts: bool [T], True where a word starts (whole-word masking), or None.
        sentence_offsets: int64 [num_sentences + 1], token offset of each sentence.
        document_offsets: int64 [num_documents + 1], sentence offset of each document.
    """

    tokens: np.ndarray
    word_starts: Optional[np.ndarray]
    sentence_offsets: np.ndarray
    document_offsets: np.ndarray

    @classmethod
    def from_documents(cls, documents: Sequence[Sequence[tuple[Sequence[int], Optional[Sequence[bool]]]]]
                       ) -> "TokenizedChunk":
        """Documents of (ids, word-start flags or None) sentences; empty sentences and documents dropped."""
        kept = [[sentence for sentence in document if len(sentence[0])] for document in documents]
        kept = [document for document in kept if document]
        sentences = [sentence for document in kept for sentence in document]
        lengths = np.fromiter((len(ids) for ids, _ in sentences), np.int64, len(sentences))
        total = int(lengths.sum())
        tokens = np.fromiter(itertools.chain.from_iterable(ids for ids, _ in sentences), np.int32, total)
        starts = None
        if any(flags is not None for _, flags in sentences):
            starts = np.fromiter(itertools.chain.from_iterable(
                flags if flags is not None else [True] * len(ids) for ids, flags in sentences), bool, total)
        sentence_offsets = np.zeros(len(sentences) + 1, np.int64)
        np.cumsum(lengths, out=sentence_offsets[1:])
        document_offsets = np.zeros(len(kept) + 1, np.int64)
        np.cumsum([len(document) for document in kept], out=document_offsets[1:])
        return cls(tokens, starts, sentence_offsets, document_offsets)

    @property
    def num_documents(self) -> int:
        return len(self.document_offsets) - 1

    @property
    def num_sentences(self) -> int:
        return len(self.sentence_offsets) - 1


@dataclass
class Spans:
    """Instances as token ranges into a chunk: A = [a_lo, a_hi), B = [b_lo, b_hi) (empty: no B)."""

    a_lo: array = field(default_factory=lambda: array("q"))
    a_hi: array = field(default_factory=lambda: array("q"))
    b_lo: array = field(default_factory=lambda: array("q"))
    b_hi: array = field(default_factory=lambda: array("q"))
    random_next: array = field(default_factory=lambda: array("b"))

    def __len__(self) -> int:
        return len(self.a_lo)

    def extend(self, other: "Spans") -> None:
        for f in fields(self):
            getattr(self, f.name).extend(getattr(other, f.name))


def truncated_lengths(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    """Final lengths after Google's truncate_seq_pair (which trims the longer side, B on ties)."""
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return len_a, len_b
    if len_a > len_b:
        cut = min(excess, len_a - len_b)
        len_a -= cut
    else:
        cut = min(excess, len_b - len_a)
        len_b -= cut
    excess -= cut
    # equal lengths now (or nothing left to trim): B, A, B, A ...
    return len_a - excess // 2, len_b - (excess + 1) // 2


def _coin_flips(rng: random.Random, count: int) -> int:
    """How many of ``count`` fair coins come up heads."""
    return bin(rng.getrandbits(count)).count("1") if count > 0 else 0


def nsp_spans(chunk: TokenizedChunk, params: MaskingParams, rng: random.Random,
              stats: GenerationStats) -> Spans:
    """One pass of Google's create_instances_from_document over every document of ``chunk``."""
    out = Spans()
    uniform = rng.random  # int(uniform() * k) is a uniform draw from range(k), cheaper than randint

    sent = chunk.sentence_offsets.tolist()
    docs = chunk.document_offsets.tolist()
    num_docs = len(docs) - 1
    max_num_tokens = params.max_seq_length - 3
    a_lo_out, a_hi_out, b_lo_out, b_hi_out, rn_out = out.a_lo, out.a_hi, out.b_lo, out.b_hi, out.random_next
    for doc in range(num_docs):
        first, end = docs[doc], docs[doc + 1]
        target = max_num_tokens
        if uniform() < params.short_seq_prob:
            target = 2 + int(uniform() * (max_num_tokens - 1))  # randint(2, max_num_tokens)
            stats.short_targets += 1
        start = i = first
        length = 0
        while i < end:
            length += sent[i + 1] - sent[i]
            if i == end - 1 or length >= target:
                count = i - start + 1
                a_end = start + (1 + int(uniform() * (count - 1)) if count >= 2 else 1)
                a_lo, a_hi = sent[start], sent[a_end]
                if count == 1 or uniform() < 0.5:
                    is_random_next = True
                    stats.forced_random_next += count == 1
                    target_b = target - (a_hi - a_lo)
                    other = doc
                    for _ in range(10):  # Google tries ten times for another document
                        other = int(uniform() * num_docs)
                        if other != doc:
                            break
                    r_first, r_end = docs[other], docs[other + 1]
                    r_start = r_first + int(uniform() * (r_end - r_first))
                    b_lo = sent[r_start]
                    # sentences from r_start until B reaches target_b tokens (at least one sentence)
                    b_hi = sent[bisect.bisect_left(sent, b_lo + target_b, r_start + 1, r_end)]
                    i = a_end - 1  # put the unused segments back
                else:
                    is_random_next = False
                    b_lo, b_hi = sent[a_end], sent[i + 1]
                len_a, len_b = truncated_lengths(a_hi - a_lo, b_hi - b_lo, max_num_tokens)
                cut_a, cut_b = (a_hi - a_lo) - len_a, (b_hi - b_lo) - len_b
                front_a, front_b = _coin_flips(rng, cut_a), _coin_flips(rng, cut_b)
                a_lo_out.append(a_lo + front_a)
                a_hi_out.append(a_lo + front_a + len_a)
                b_lo_out.append(b_lo + front_b)
                b_hi_out.append(b_lo + front_b + len_b)
                rn_out.append(is_random_next)
                start = i + 1
                length = 0
            i += 1
    return out


def line_spans(chunk: TokenizedChunk, params: MaskingParams, pack: bool, stats: GenerationStats) -> Spans:
    """``[CLS] line [SEP]`` spans: one per line (a longer line is split into record-sized pieces),
    or with ``pack`` consecutive lines filling every record."""
    width = params.max_seq_length - 2
    offsets = chunk.sentence_offsets
    if pack:
        lo = np.arange(0, int(offsets[-1]), width, dtype=np.int64)
        hi = np.minimum(lo + width, offsets[-1])
    else:
        lengths = np.diff(offsets)
        pieces = -(-lengths // width)  # ceil
        stats.split_lines += int((pieces > 1).sum())
        first = np.repeat(offsets[:-1], pieces)
        index_in_line = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        lo = first + index_in_line * width
        hi = np.minimum(lo + width, np.repeat(offsets[1:], pieces))
    out = Spans()
    out.a_lo.extend(lo.tolist())
    out.a_hi.extend(hi.tolist())
    out.b_lo.extend(hi.tolist())
    out.b_hi.extend(hi.tolist())
    out.random_next.extend(bytes(len(lo)))
    return out


def assemble(chunk: TokenizedChunk, spans: Spans, params: MaskingParams, pairs: bool):
    """Rows ``[CLS] A [SEP] (B [SEP])`` for all spans at once.

    Returns:
        ``(input_ids, segment_ids, lengths, word_starts, special)``: int32 [N, S], int32 [N, S],
        int64 [N], bool [N, S] (word starts of candidate tokens) and bool [N, S] ([CLS]/[SEP]).
    """
    s = params.max_seq_length
    a_lo = np.frombuffer(spans.a_lo, np.int64)[:, None]
    la = (np.frombuffer(spans.a_hi, np.int64) - a_lo[:, 0])[:, None]
    b_lo = np.frombuffer(spans.b_lo, np.int64)[:, None]
    lb = (np.frombuffer(spans.b_hi, np.int64) - b_lo[:, 0])[:, None]
    lengths = la + 2 + (lb + 1 if pairs else 0)  # (N, 1)
    p = np.arange(s)[None, :]  # (1, S)
    in_a = (p >= 1) & (p <= la)
    in_b = (p >= la + 2) & (p < la + 2 + lb) if pairs else np.zeros_like(in_a)
    source = np.where(in_a, a_lo + p - 1, b_lo + p - la - 2)
    source = np.where(in_a | in_b, source, 0)
    tokens = chunk.tokens if len(chunk.tokens) else np.zeros(1, np.int32)
    input_ids = np.where(in_a | in_b, tokens[source], 0).astype(np.int32)
    special = (p == 0) | (p == la + 1) | ((p == lengths - 1) if pairs else False)
    special &= p < lengths
    input_ids[special] = params.sep_id
    input_ids[:, 0] = params.cls_id
    segment_ids = ((p >= la + 2) & (p < lengths)).astype(np.int32) if pairs else np.zeros_like(input_ids)
    if chunk.word_starts is not None and params.whole_word_mask:
        word_starts = np.where(in_a | in_b, chunk.word_starts[source], False)
        # the first token after [CLS] or [SEP] always starts a word (truncation may cut a word)
        word_starts |= (p == 1) | ((p == la + 2) & in_b)
    else:
        word_starts = in_a | in_b
    return input_ids, segment_ids, lengths[:, 0], word_starts, special


def mask_tokens(input_ids: np.ndarray, lengths: np.ndarray, word_starts: np.ndarray, special: np.ndarray,
                params: MaskingParams, rng: np.random.Generator, stats: GenerationStats):
    """Google's create_masked_lm_predictions on every row at once (see the module docstring).

    Args:
        input_ids: int32 [N, S], modified in place.
        lengths: int [N] real tokens per row.
        word_starts: bool [N, S], True at the first token of each candidate word.
        special: bool [N, S], [CLS]/[SEP] positions (never masked).

    Returns:
        ``(masked_lm_positions, masked_lm_ids, masked_lm_weights)``: [N, P] int32, int32, float32.
    """
    n, s = input_ids.shape
    big_p = min(params.max_predictions_per_seq, s)
    candidate = (np.arange(s)[None, :] < lengths[:, None]) & ~special
    num_to_predict = np.minimum(big_p, np.maximum(1, np.round(lengths * params.masked_lm_prob))).astype(np.int64)
    rows = np.arange(n)[:, None]
    if params.whole_word_mask:
        positions, count, word_of = _choose_words(candidate, word_starts & candidate, num_to_predict, big_p, rng)
    else:  # every token is a word: the num_to_predict candidates with the smallest random keys
        keys = np.where(candidate, rng.random((n, s), dtype=np.float32), np.float32(2.0))
        if big_p < s:
            smallest = np.argpartition(keys, big_p - 1, axis=1)[:, :big_p]
        else:
            smallest = np.broadcast_to(np.arange(s), (n, s)).copy()
        smallest_keys = keys[rows, smallest]
        by_key = np.argsort(smallest_keys, axis=1)
        smallest, smallest_keys = smallest[rows, by_key], smallest_keys[rows, by_key]
        take = (np.arange(big_p)[None, :] < num_to_predict[:, None]) & (smallest_keys < 2.0)
        positions = np.sort(np.where(take, smallest, s), axis=1)  # ascending, unused slots = s
        count = take.sum(1)
        word_of = None

    valid = positions < s
    positions = np.where(valid, positions, 0)
    labels = np.where(valid, input_ids[rows, positions], 0)
    # 80% [MASK], 10% kept, 10% random: drawn per word (whole-word masking) or per token
    first_draw = rng.random(positions.shape, dtype=np.float32)
    second_draw = rng.random(positions.shape, dtype=np.float32)
    if word_of is not None:  # the draws of a word's first masked token apply to all its tokens
        first_draw = np.take_along_axis(first_draw, word_of, axis=1)
        second_draw = np.take_along_axis(second_draw, word_of, axis=1)
    as_mask = valid & (first_draw < 0.8)
    as_random = valid & ~as_mask & (second_draw >= 0.5)
    replaced = np.where(as_mask, params.mask_id,
                        np.where(as_random, rng.integers(0, params.vocab_size, positions.shape), labels))
    input_ids[rows, positions] = np.where(valid, replaced, input_ids[rows, positions])

    masked = int(count.sum())
    stats.masked += masked
    stats.masked_as_mask += int(as_mask.sum())
    stats.masked_random += int(as_random.sum())
    stats.masked_kept += masked - int(as_mask.sum()) - int(as_random.sum())
    pad = params.max_predictions_per_seq - big_p
    return (np.pad(positions, ((0, 0), (0, pad))).astype(np.int32), np.pad(labels, ((0, 0), (0, pad))).astype(np.int32),
            np.pad(valid.astype(np.float32), ((0, 0), (0, pad))))


def _choose_words(candidate: np.ndarray, starts: np.ndarray, num_to_predict: np.ndarray, big_p: int,
                  rng: np.random.Generator):
    """Whole words in uniformly random order, each taken unless it would overshoot num_to_predict.

    Returns:
        ``(positions, count, word_of)``: the chosen token positions ascending [N, P] (unused slots
        = S), how many per row [N], and for each slot the slot index of the first token of its word
        [N, P] (so a per-word draw can be shared).
    """
    n, s = candidate.shape
    word_id = np.cumsum(starts, axis=1) - 1  # (N, S) word index of each token; -1 before the first word
    word_index = np.maximum(word_id, 0)
    flat = (np.arange(n)[:, None] * s + word_index)[candidate]
    word_size = np.bincount(flat, minlength=n * s).reshape(n, s)  # (N, word index)
    num_words = starts.sum(1)
    keys = np.where(starts, rng.random((n, s), dtype=np.float32), np.float32(2.0))
    order = np.argsort(keys, axis=1)  # word starts in random order first
    order_word = np.take_along_axis(word_id, order, axis=1)
    order_size = np.take_along_axis(word_size, np.maximum(order_word, 0), axis=1)
    chosen = np.zeros((n, s), bool)  # by word index
    total = np.zeros(n, np.int64)
    for rank in range(s):
        active = (rank < num_words) & (total < num_to_predict)
        if not active.any():
            break
        take = active & (total + order_size[:, rank] <= num_to_predict)
        total += np.where(take, order_size[:, rank], 0)
        chosen[np.nonzero(take)[0], order_word[take, rank]] = True
    masked = candidate & np.take_along_axis(chosen, word_index, axis=1)
    positions = np.sort(np.where(masked, np.arange(s)[None, :], s), axis=1)[:, :big_p]
    valid = positions < s
    slot_word = np.where(valid, np.take_along_axis(word_id, np.minimum(positions, s - 1), axis=1), -1)
    # the first slot of each word: where the word index changes
    first_slot = np.ones_like(valid)
    first_slot[:, 1:] = slot_word[:, 1:] != slot_word[:, :-1]
    word_of = np.maximum.accumulate(np.where(first_slot, np.arange(big_p)[None, :], 0), axis=1)
    return positions, valid.sum(1), word_of


def build_records(chunk: TokenizedChunk, spans: Spans, params: MaskingParams, pairs: bool,
                  rng: np.random.Generator, stats: GenerationStats) -> dict[str, np.ndarray]:
    """All record columns (the zoo's schema) for ``spans``, in a random order."""
    if not len(spans):
        return {}
    input_ids, segment_ids, lengths, word_starts, special = assemble(chunk, spans, params, pairs)
    positions, ids, weights = mask_tokens(input_ids, lengths, word_starts, special, params, rng, stats)
    input_mask = (np.arange(params.max_seq_length)[None, :] < lengths[:, None]).astype(np.int32)
    random_next = np.frombuffer(spans.random_next, np.int8).astype(np.int32)[:, None]
    stats.instances += len(lengths)
    stats.tokens += int(lengths.sum())
    stats.random_next += int(random_next.sum())
    order = rng.permutation(len(lengths))
    columns = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids,
               "masked_lm_positions": positions, "masked_lm_ids": ids, "masked_lm_weights": weights,
               "next_sentence_labels": random_next}
    return {k: v[order] for k, v in columns.items()}
