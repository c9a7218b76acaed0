"""SQuAD-layout JSON -> examples -> windowed features, with google-research/bert's semantics.

* Examples: the context is split on whitespace into words with a character-to-word map (each CJK
  character, and each non-ASCII punctuation mark, is a word of its own, so that answers in Chinese
  text without spaces still map to exact character spans); a training answer's words come from its ``answer_start`` and length. An answer
  whose text is not the context at ``answer_start`` is an error (file, question id, both texts); an
  answer whose text (whitespace removed) is not found in its words is skipped and counted, as
  Google's reader does, never silently (an answer inside a word keeps the whole word).
* Features: the question is tokenized and cut to ``max_query_length`` pieces; the words become
  WordPieces with both index maps; ``_improve_answer_span`` narrows the answer to the pieces that
  spell it; the document is cut into windows of at most ``max_seq_length - len(query) - 3``
  pieces, each starting ``doc_stride`` pieces after the previous one (Google's step; HF's
  ``stride`` is the overlap instead); ``[CLS] question [SEP] window [SEP]`` with segment 1 from
  the window on; every window piece gets its word index and a max-context flag (the window where
  min(left, right context) + 0.01 x window length is largest); an answer that is not wholly inside
  a window, and an impossible question (v2), is labelled at position 0 ([CLS]).

Shape letters: S sequence length (``max_seq_length``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, os.PathLike]


class SquadDataError(ValueError):
    """A SQuAD file is not in the expected layout or disagrees with itself (file, question id, value)."""


@dataclasses.dataclass
class SquadExample:
    """One question over one context, split into whitespace words."""

    qas_id: str
    question_text: str
    doc_tokens: List[str]
    answers: List[str]  # every gold answer text (evaluation)
    spaced: List[bool] = dataclasses.field(default_factory=list)  # whitespace before each word (not CJK runs)
    orig_answer_text: str = ""  # the training answer
    start_position: int = -1  # its first and last word (-1: none)
    end_position: int = -1
    is_impossible: bool = False


@dataclasses.dataclass
class SquadFeature:
    """One window of one example: the model's inputs and what postprocessing needs."""

    unique_id: int
    example_index: int
    doc_span_index: int
    tokens: List[str]
    token_to_orig_map: Dict[int, int]  # position in ``tokens`` -> word of the example
    token_is_max_context: Dict[int, bool]
    input_ids: List[int]
    input_mask: List[int]
    segment_ids: List[int]
    start_position: int = 0
    end_position: int = 0
    is_impossible: bool = False


def _is_whitespace(c: str) -> bool:
    return c in " \t\r\n" or ord(c) == 0x202F


def _is_cjk(c: str) -> bool:
    """A CJK ideograph, or non-ASCII punctuation (。，「 ...): a word of its own."""
    if ord(c) > 127 and unicodedata.category(c).startswith("P"):
        return True
    cp = ord(c)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def split_words(context: str) -> Tuple[List[str], List[int], List[bool]]:
    """Whitespace words of ``context`` (a CJK character is a word of its own), per character the
    index of its word (whitespace belongs to the word before it, -1 before the first), and per word
    whether whitespace precedes it (how the words join back into text)."""
    words: List[str] = []
    char_to_word: List[int] = []
    spaced: List[bool] = []
    new_word, after_space = True, False
    for c in context:
        if _is_whitespace(c):
            new_word, after_space = True, True
        elif _is_cjk(c):
            words.append(c)
            spaced.append(after_space)
            new_word, after_space = True, False
        else:
            if new_word:
                words.append(c)
                spaced.append(after_space)
            else:
                words[-1] += c
            new_word, after_space = False, False
        char_to_word.append(len(words) - 1)
    return words, char_to_word, spaced


def join_words(words: Sequence[str], spaced: Sequence[bool]) -> str:
    """Words back into text: one space where the context had whitespace (Google joins every word
    with a space; Chinese characters stay together)."""
    return "".join((" " if i and space else "") + word for i, (word, space) in enumerate(zip(words, spaced)))


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise SquadDataError(f"{where}: no {key!r} field (not a SQuAD-layout file)")
    value = obj[key]
    if not isinstance(value, kind):
        raise SquadDataError(f"{where}: {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def read_squad_examples(path: PathLike, is_training: bool, version_2_with_negative: bool = False
                        ) -> Tuple[List[SquadExample], Dict[str, int]]:
    """The examples of a SQuAD-layout JSON file, and counts: ``questions``, ``answered`` (with at
    least one gold answer), ``impossible``,
    ``skipped`` (training answers that Google's reader drops: their whitespace-normalised text is not
    found in their words) and ``duplicate_ids``.

    Raises:
        SquadDataError: not SQuAD layout, a question without an id, an answer
            whose text is not the context at ``answer_start``, or v2 questions (no answer /
            ``is_impossible``) without ``version_2_with_negative``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SquadDataError(f"{path} is not a readable JSON file: {err}") from None
    articles = _field(data, "data", list, str(path))
    examples: List[SquadExample] = []
    counts = {"questions": 0, "answered": 0, "impossible": 0, "skipped": 0, "duplicate_ids": 0}
    seen: set = set()
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(_field(article, "paragraphs", list, f"{path}: data[{a}]")):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, where)
            words, char_to_word, spaced = split_words(context)
            for q, qa in enumerate(_field(paragraph, "qas", list, where)):
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), (str, int)) or str(qa["id"]) == "":
                    raise SquadDataError(f"{where}.qas[{q}]: the question has no id")
                qid = str(qa["id"])
                at = f"{path}: question {qid!r}"
                counts["duplicate_ids"] += qid in seen  # (QuAC's sample repeats ids; predictions are by id)
                seen.add(qid)
                question = _field(qa, "question", str, at)
                answers = _field(qa, "answers", list, at) if "answers" in qa else []
                impossible = bool(qa.get("is_impossible", False)) or not answers
                if impossible and not version_2_with_negative and (is_training or qa.get("is_impossible")):
                    raise SquadDataError(f"{at} has no answer (SQuAD 2.0 data): pass --version_2_with_negative "
                                         "true, or v2 scores collapse")
                for answer in answers:
                    text = _field(answer, "text", str, at)
                    start = _field(answer, "answer_start", int, at)
                    if context[start:start + len(text)] != text:
                        raise SquadDataError(f"{at}: answer {text!r} is not the context at answer_start {start} "
                                             f"({context[start:start + len(text)]!r})")
                counts["questions"] += 1
                counts["answered"] += bool(answers)
                counts["impossible"] += impossible
                example = SquadExample(qid, question, words, [a["text"] for a in answers], spaced,
                                       is_impossible=impossible)
                if is_training and not impossible:
                    first = answers[0]
                    text, start = first["text"], first["answer_start"]
                    example.orig_answer_text = text
                    example.start_position = char_to_word[start]
                    example.end_position = char_to_word[start + len(text) - 1]
                    # Google compares space-joined words; without the spaces, CJK words (characters) match too
                    actual = "".join(words[example.start_position:example.end_position + 1])
                    if "".join(text.split()) not in actual:
                        counts["skipped"] += 1
                        continue
                examples.append(example)
    return examples, counts


def _improve_answer_span(doc_pieces: Sequence[str], start: int, end: int, tokenizer, answer_text: str
                         ) -> Tuple[int, int]:
    """The narrowest piece span inside [start, end] that spells the tokenized answer (Google's)."""
    target = " ".join(tokenizer.tokenize(answer_text))
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if " ".join(doc_pieces[new_start:new_end + 1]) == target:
                return new_start, new_end
    return start, end


def _is_max_context(spans: Sequence[Tuple[int, int]], current: int, position: int) -> bool:
    best_score, best = None, None
    for index, (span_start, length) in enumerate(spans):
        span_end = span_start + length - 1
        if position < span_start or position > span_end:
            continue
        score = min(position - span_start, span_end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best = score, index
    return current == best


def convert_examples_to_features(examples: Sequence[SquadExample], tokenizer, max_seq_length: int = 384,
                                 doc_stride: int = 128, max_query_length: int = 64, is_training: bool = False,
                                 first_unique_id: int = 1000000000) -> List[SquadFeature]:
    """Windowed features of ``examples`` (see the module docstring); ``unique_id`` counts up from
    ``first_unique_id`` as in Google's code."""
    if max_query_length + 4 > max_seq_length:
        raise SquadDataError(f"max_query_length {max_query_length} leaves no room for the document in "
                             f"max_seq_length {max_seq_length}")
    if doc_stride < 1:
        raise SquadDataError(f"doc_stride must be positive, got {doc_stride}")
    cls, sep = "[CLS]", "[SEP]"
    features: List[SquadFeature] = []
    unique_id = first_unique_id
    for example_index, example in enumerate(examples):
        query = tokenizer.tokenize(example.question_text)[:max_query_length]
        tok_to_orig: List[int] = []
        orig_to_tok: List[int] = []
        pieces: List[str] = []
        for i, word in enumerate(example.doc_tokens):
            orig_to_tok.append(len(pieces))
            for piece in tokenizer.tokenize(word):
                tok_to_orig.append(i)
                pieces.append(piece)
        tok_start = tok_end = -1
        if is_training and not example.is_impossible:
            tok_start = orig_to_tok[example.start_position]
            tok_end = (orig_to_tok[example.end_position + 1] - 1 if example.end_position < len(example.doc_tokens) - 1
                       else len(pieces) - 1)
            tok_start, tok_end = _improve_answer_span(pieces, tok_start, tok_end, tokenizer, example.orig_answer_text)
        max_doc = max_seq_length - len(query) - 3
        spans: List[Tuple[int, int]] = []
        offset = 0
        while offset < len(pieces) or not spans:
            length = min(len(pieces) - offset, max_doc)
            spans.append((offset, length))
            if offset + length >= len(pieces):
                break
            offset += min(length, doc_stride)
        for span_index, (span_start, length) in enumerate(spans):
            tokens = [cls, *query, sep]
            segment_ids = [0] * len(tokens)
            to_orig: Dict[int, int] = {}
            max_context: Dict[int, bool] = {}
            for i in range(length):
                index = span_start + i
                to_orig[len(tokens)] = tok_to_orig[index]
                max_context[len(tokens)] = _is_max_context(spans, span_index, index)
                tokens.append(pieces[index])
                segment_ids.append(1)
            tokens.append(sep)
            segment_ids.append(1)
            input_ids = tokenizer.convert_tokens_to_ids(tokens)
            input_mask = [1] * len(input_ids)
            padding = max_seq_length - len(input_ids)
            input_ids += [0] * padding
            input_mask += [0] * padding
            segment_ids += [0] * padding
            start = end = 0
            if is_training and not example.is_impossible and span_start <= tok_start and tok_end < span_start + length:
                start = tok_start - span_start + len(query) + 2
                end = tok_end - span_start + len(query) + 2
            features.append(SquadFeature(unique_id, example_index, span_index, tokens, to_orig, max_context, input_ids,
                                         input_mask, segment_ids, start, end, example.is_impossible))
            unique_id += 1
    return features


def add_unanswerable(articles: Sequence[dict], seed: int = 12345) -> Tuple[List[dict], Dict[str, int]]:
    """A SQuAD 2.0-style set from SQuAD 1.1 articles: every question kept, plus the same question
    asked of another paragraph of its article (drawn with ``seed``) whose context contains none of
    its answers (compared lower-cased), as an impossible question with id ``ID_unanswerable``.

    These negatives are easier than SQuAD 2.0's, which crowd workers wrote to look answerable
    from the paragraph they are asked of: here the paragraph is often simply about something else.

    Returns:
        A new ``data`` list and counts ``questions``, ``unanswerable`` and ``no_other_paragraph``
        (questions whose every other paragraph contains one of their answers).
    """
    import copy
    import random

    rng = random.Random(seed)
    out = copy.deepcopy(list(articles))
    counts = {"questions": 0, "unanswerable": 0, "no_other_paragraph": 0}
    for article in out:
        paragraphs = article["paragraphs"]
        lowered = [p["context"].lower() for p in paragraphs]
        added: List[List[dict]] = [[] for _ in paragraphs]
        for index, paragraph in enumerate(paragraphs):
            for qa in paragraph["qas"]:
                counts["questions"] += 1
                answers = [a["text"].lower() for a in qa.get("answers", [])]
                others = [j for j in range(len(paragraphs))
                          if j != index and not any(a in lowered[j] for a in answers)]
                if not others:
                    counts["no_other_paragraph"] += 1
                    continue
                added[rng.choice(others)].append({"id": f"{qa['id']}_unanswerable", "question": qa["question"],
                                                  "answers": [], "is_impossible": True})
                counts["unanswerable"] += 1
        for paragraph, extra in zip(paragraphs, added):
            paragraph["qas"].extend(extra)
    return out, counts


__all__ = ["SquadDataError", "SquadExample", "add_unanswerable", "SquadFeature", "convert_examples_to_features", "join_words",
           "read_squad_examples", "split_words"]
