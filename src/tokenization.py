"""WordPiece tokenization with the exact semantics of Google's BERT ``FullTokenizer``.

``FullTokenizer`` gives the same tokens as ``bert.tokenization.FullTokenizer``
(google-research/bert) for any input text, and runs the work in the HuggingFace
``tokenizers`` Rust library (normalizer + pre-tokenizer + WordPiece model), with a
batch API that runs in parallel.

Google's pipeline, per text:

1. clean: drop U+0000, U+FFFD and control characters (categories Cc, Cf other than
   tab, newline, carriage return); map whitespace (those three, space, category Zs)
   to a space;
2. put spaces around CJK ideographs; split on whitespace;
3. if ``do_lower_case``: per word, ``str.lower()``, then NFD and drop category Mn
   (accent stripping);
4. split off every punctuation character (ASCII non-alphanumerics and category P*);
5. greedy longest-match-first WordPiece per word (``##`` continuation prefix); a
   word longer than ``max_input_chars_per_word`` characters, or one that cannot be
   covered by the vocab, becomes ``[UNK]``.

How the Rust pipeline is kept exact:

* Every character class (control, whitespace, combining marks, punctuation, CJK)
  is computed from Python's ``unicodedata`` with Google's own predicates and handed
  to ``tokenizers`` as explicit code-point ranges, so the Unicode version used for
  those decisions is the interpreter's, exactly as in Google's code.  (The stock
  ``BertNormalizer``/``BertPreTokenizer`` differ from Google on about 138,000 code
  points: they delete private-use characters, do not treat U+2B820..U+2B91F as CJK,
  and their punctuation, format-character and mark tables are older; see
  docs/tokenizer.md.)
* Lower-casing and NFD are done by Rust.  The characters for which Rust and Python
  disagree are measured once per process (one batched probe over all assigned code
  points); so are the characters whose mapping would interact with the order of the
  steps above.  Texts containing any of them, the Greek capital sigma (Python
  lower-cases it to final ``ς`` at the end of a word, Rust always to ``σ``), or a
  code point unassigned in Python's Unicode database, take an exact pure-Python
  basic tokenizer, whose words then go through the same Rust WordPiece model.
  On real text this path is rare: none of the 55,000 lines of the parity corpora
  (English Wikipedia, People's Daily, fortunes-zh) takes it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

logger = logging.getLogger(__name__)

__all__ = [
    "tokenizer_for_vocab",
    "FullTokenizer",
    "basic_tokenize",
    "load_vocab",
    "check_vocab_size",
    "detect_vocab_casing",
    "validate_case_matches_vocab",
]

PathLike = Union[str, "os.PathLike[str]"]
TextInput = Union[str, bytes]
PairInput = Union[TextInput, Tuple[TextInput, TextInput], List[TextInput]]

UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
PAD_TOKEN = "[PAD]"
MASK_TOKEN = "[MASK]"

_MAX_UNICODE = 0x110000


# ----------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------


def load_vocab(vocab_file: PathLike) -> Dict[str, int]:
    """Loads a BERT vocab file: one token per line, the id is the line number.

    Lines are stripped of surrounding whitespace like Google's ``load_vocab``.  A file
    ending with a newline has no extra empty token; only ``\\n`` separates lines.

    Args:
        vocab_file: path to a UTF-8 text file.

    Returns:
        Mapping from token to id (0-based line number), in file order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, is not valid UTF-8, or repeats a token (the
            message names both line numbers).
    """
    path = os.fspath(vocab_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vocab file {path} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"vocab file {path} is not valid UTF-8 (byte offset {e.start}, line {line}): {e.reason}"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError(f"vocab file {path} is empty")
    vocab: Dict[str, int] = {}
    for index, line in enumerate(lines):
        token = line.strip()
        if token in vocab:
            raise ValueError(
                f"vocab file {path} has duplicate token {token!r} on lines "
                f"{vocab[token] + 1} and {index + 1}"
            )
        vocab[token] = index
    return vocab


def _vocab_entries(tokenizer_or_vocab: Union["FullTokenizer", Mapping[str, int], int]) -> int:
    if isinstance(tokenizer_or_vocab, FullTokenizer):
        return tokenizer_or_vocab.vocab_size
    if isinstance(tokenizer_or_vocab, Mapping):
        return len(tokenizer_or_vocab)
    if isinstance(tokenizer_or_vocab, int):
        return tokenizer_or_vocab
    raise TypeError(
        "expected a FullTokenizer, a vocab mapping or an int, got "
        f"{type(tokenizer_or_vocab).__name__}"
    )


def check_vocab_size(
    tokenizer_or_vocab: Union["FullTokenizer", Mapping[str, int], int],
    vocab_size: int,
    vocab_file: Optional[PathLike] = None,
    *,
    allow_larger_model: bool = False,
) -> None:
    """Checks that a vocab matches a model's ``vocab_size``.

    Args:
        tokenizer_or_vocab: a ``FullTokenizer``, a token-to-id mapping, or the
            number of vocab entries.
        vocab_size: the model config's ``vocab_size`` (rows of the word embedding).
        vocab_file: path named in the error; defaults to the tokenizer's file.
        allow_larger_model: accept a model with more embedding rows than vocab
            entries (padded embeddings); ids are then all valid but some rows unused.

    Raises:
        ValueError: the sizes disagree, e.g. ``vocab file vocab.txt has 30522 entries
            but the model config says vocab_size 21128``.
    """
    entries = _vocab_entries(tokenizer_or_vocab)
    if vocab_file is None and isinstance(tokenizer_or_vocab, FullTokenizer):
        vocab_file = tokenizer_or_vocab.vocab_file
    if entries == vocab_size or (allow_larger_model and entries < vocab_size):
        return
    name = os.fspath(vocab_file) if vocab_file is not None else "<in-memory vocab>"
    raise ValueError(
        f"vocab file {name} has {entries} entries but the model config says vocab_size {vocab_size}"
    )


_SPECIAL_RE = re.compile(r"^(\[[^\[\]\s]+\]|<[^<>\s]+>)$")


def detect_vocab_casing(vocab: Union[Mapping[str, int], Iterable[str]]) -> str:
    """Tells from its content whether a vocab was built from lower-cased text.

    Special tokens (``[CLS]``, ``[unused7]``, ``<S>``...) are ignored.  An uncased
    vocab has no other token with an upper-case ASCII letter; a cased vocab
    (bert-base-cased: about a third of its ASCII word tokens) has many.

    Args:
        vocab: a token-to-id mapping or an iterable of tokens.

    Returns:
        ``"uncased"``, ``"cased"`` (at least 1% of the ASCII-letter tokens contain
        an upper-case letter), or ``"unknown"`` (no ASCII-letter tokens, or only a
        handful of upper-case ones).
    """
    upper = lower = 0
    for token in vocab:
        if _SPECIAL_RE.match(token):
            continue
        has_upper = any("A" <= c <= "Z" for c in token)
        if has_upper:
            upper += 1
        elif any("a" <= c <= "z" for c in token):
            lower += 1
    if upper == 0:
        return "uncased" if lower else "unknown"
    if upper >= 0.01 * (upper + lower):
        return "cased"
    return "unknown"


def validate_case_matches_vocab(
    do_lower_case: bool,
    vocab: Union[Mapping[str, int], Iterable[str]],
    vocab_file: Optional[PathLike] = None,
) -> None:
    """Fails when ``do_lower_case`` contradicts the casing of the vocab.

    This is Google's ``validate_case_matches_checkpoint`` check, decided from the
    vocab content instead of the checkpoint's directory name.

    Args:
        do_lower_case: the tokenizer setting to validate.
        vocab: a token-to-id mapping or an iterable of tokens.
        vocab_file: path named in the error message.

    Raises:
        ValueError: ``do_lower_case=True`` with a cased vocab (its upper-case tokens
            would never be produced), or ``do_lower_case=False`` with an uncased vocab
            (every capitalised word would be split or become [UNK]).
    """
    casing = detect_vocab_casing(vocab)
    name = os.fspath(vocab_file) if vocab_file is not None else "<in-memory vocab>"
    if casing == "cased" and do_lower_case:
        raise ValueError(
            f"do_lower_case=True but vocab file {name} is cased (it has upper-case tokens); "
            "use do_lower_case=False, as the model was pretrained"
        )
    if casing == "uncased" and not do_lower_case:
        raise ValueError(
            f"do_lower_case=False but vocab file {name} is uncased (no upper-case tokens); "
            "use do_lower_case=True, as the model was pretrained"
        )


# ----------------------------------------------------------------------------
# Google's character classes and pure-Python basic tokenizer (the exact path)
# ----------------------------------------------------------------------------


def _is_whitespace(char: str) -> bool:
    if char in " \t\n\r":
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # Google: all non-letter/number ASCII counts as punctuation ("^", "$", "`"...).
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp: int) -> bool:
    # The CJK Unified Ideographs blocks as Google lists them (not Hangul, kana...).
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean_text(text: str) -> str:
    out = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            continue
        out.append(" " if _is_whitespace(char) else char)
    return "".join(out)


def _space_chinese_chars(text: str) -> str:
    return "".join(f" {c} " if _is_chinese_char(ord(c)) else c for c in text)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _split_on_punctuation(word: str) -> List[str]:
    out: List[List[str]] = []
    start_new_word = True
    for char in word:
        if _is_punctuation(char):
            out.append([char])
            start_new_word = True
        else:
            if start_new_word:
                out.append([])
            start_new_word = False
            out[-1].append(char)
    return ["".join(chars) for chars in out]


def basic_tokenize(text: str, do_lower_case: bool = True) -> List[str]:
    """Google's ``BasicTokenizer.tokenize`` in pure Python (the reference semantics).

    Args:
        text: input text.
        do_lower_case: lower-case and strip accents.

    Returns:
        The words that WordPiece is then applied to.
    """
    words = _space_chinese_chars(_clean_text(text)).split()
    out: List[str] = []
    for word in words:
        if do_lower_case:
            word = _strip_accents(word.lower())
        out.extend(_split_on_punctuation(word))
    return " ".join(out).split()


# ----------------------------------------------------------------------------
# Character classes for the Rust pipeline (computed once per process)
# ----------------------------------------------------------------------------


def _ranges(codepoints: Iterable[int]) -> List[Tuple[int, int]]:
    ranges: List[Tuple[int, int]] = []
    for cp in codepoints:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges


def _onig_class(codepoints: Iterable[int]) -> str:
    """An Oniguruma (``tokenizers.Regex``) character class of exactly these code points."""
    parts = [
        f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in _ranges(codepoints)
    ]
    return "[" + "".join(parts) + "]"


def _rust_map(
    normalizer: normalizers.Normalizer, chars: Sequence[str], prefix: str = "", suffix: str = ""
) -> List[str]:
    """Applies a Rust normalizer to each of ``chars`` (wrapped in prefix/suffix) in one call."""
    sep = "|"  # unchanged by Lowercase/NFD, combining class 0: nothing reorders across it
    joined = sep.join(prefix + c + suffix for c in chars)
    out = normalizer.normalize_str(joined).split(sep)
    if len(out) != len(chars):  # pragma: no cover - would mean a mapping produced "|"
        raise RuntimeError("tokenizers normalizer probe lost alignment")
    return out


# A private-use character the Rust lower-casing pipeline substitutes for any
# character it may not handle exactly like Google; it is in the unsafe class itself,
# so a text containing it is also routed to the exact path.
_MARKER = "\U0010FFFD"


@dataclass(frozen=True)
class _CharClasses:
    control: str  # onig class: characters Google deletes
    whitespace: str  # onig class: characters Google treats as whitespace
    marks: str  # onig class: category Mn (dropped after NFD when lower-casing)
    split: str  # onig class: punctuation and CJK ideographs (isolated as words)


@functools.lru_cache(maxsize=None)
def _char_codepoints() -> Dict[str, List[int]]:
    """Google's character classes over all code points, from Python's unicodedata."""
    classes: Dict[str, List[int]] = {k: [] for k in ("control", "whitespace", "marks", "split", "unassigned")}
    control, whitespace, marks, split, unassigned = classes.values()
    category = unicodedata.category
    for cp in range(_MAX_UNICODE):
        if 0xD800 <= cp < 0xE000:
            continue
        char = chr(cp)
        cat = category(char)
        if cat == "Cn":
            unassigned.append(cp)
            if _is_chinese_char(cp):  # Google's CJK ranges are ranges, assigned or not
                split.append(cp)
        elif (cat == "Cc" or cat == "Cf") and char not in "\t\n\r" or cp == 0xFFFD:
            control.append(cp)
        # str.split() (Google's whitespace_tokenize) also splits on U+2028/U+2029.
        elif cat == "Zs" or char.isspace():
            whitespace.append(cp)
        elif _is_punctuation(char) or _is_chinese_char(cp):
            split.append(cp)
        elif cat == "Mn":
            marks.append(cp)
    return classes


@functools.lru_cache(maxsize=None)
def _char_classes() -> _CharClasses:
    c = _char_codepoints()
    return _CharClasses(
        control=_onig_class(c["control"]),
        whitespace=_onig_class(c["whitespace"]),
        marks=_onig_class(c["marks"]),
        split=_onig_class(c["split"]),
    )


@functools.lru_cache(maxsize=None)
def _unsafe_lower_class() -> str:
    """Onig class of the characters the Rust lower-casing pipeline may get wrong.

    Measured against this interpreter's ``str.lower`` and ``unicodedata`` with one
    batched probe per property over all assigned code points.
    """
    c = _char_codepoints()
    # Control and whitespace characters are replaced before lower-casing.
    not_probed = set(c["unassigned"]) | set(c["control"]) | set(c["whitespace"])
    not_probed.add(ord("|"))  # the probe separator
    cjk_or_space = set(c["whitespace"]) | set(c["control"])
    cjk_or_space.update(cp for cp in c["split"] if _is_chinese_char(cp))
    chars = [
        chr(cp)
        for cp in range(_MAX_UNICODE)
        if cp not in not_probed
        and not 0xD800 <= cp < 0xE000
        and not (0xE000 <= cp <= 0xF8FF or 0xF0000 <= cp)  # private use: no case, no decomposition
    ]

    unsafe = {0x03A3, ord(_MARKER)}  # GREEK CAPITAL SIGMA: str.lower() is context dependent
    lower_nfd = normalizers.Sequence([normalizers.Lowercase(), normalizers.NFD()])
    for char, rust in zip(chars, _rust_map(lower_nfd, chars)):
        google = unicodedata.normalize("NFD", char.lower())
        if rust != google:
            unsafe.add(ord(char))
        elif google != char:
            # Google isolates CJK and splits on whitespace before lower-casing, the
            # Rust pipeline after: safe only if the mapping keeps those classes.
            cp = ord(char)
            touched = {cp, *map(ord, google)} & cjk_or_space
            if touched and not (len(google) == 1 and _is_chinese_char(cp) and _is_chinese_char(ord(google))):
                unsafe.add(cp)
    # Canonical reordering: characters whose combining class differs between the two.
    nfd = normalizers.NFD()
    for prefix, suffix in (("\u0345", ""), ("", "\u0334")):  # combining classes 240 and 1
        for char, rust in zip(chars, _rust_map(nfd, chars, prefix, suffix)):
            if rust != unicodedata.normalize("NFD", prefix + char + suffix):
                unsafe.add(ord(char))
    # Unassigned here but maybe assigned (with case or decomposition) in Rust's tables.
    unsafe.update(c["unassigned"])
    logger.debug("%d code points are routed to the exact Python path when lower-casing", len(unsafe))
    return _onig_class(sorted(unsafe))


# ----------------------------------------------------------------------------
# FullTokenizer
# ----------------------------------------------------------------------------


def _to_text(text: TextInput) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")  # as Google's convert_to_unicode
    raise TypeError(f"expected str or bytes, got {type(text).__name__}: {text!r:.80}")


class FullTokenizer:
    """Google BERT ``FullTokenizer`` (basic tokenization + WordPiece), Rust-backed.

    Args:
        vocab_file: vocab file, one token per line (see ``load_vocab``).
        do_lower_case: lower-case and strip accents (uncased and Chinese models).
        max_input_chars_per_word: longer words become ``[UNK]`` (Google: 200).

    Example:
        >>> tok = FullTokenizer("vocab.txt", do_lower_case=True)
        >>> tok.tokenize("UNwant\\u00E9d,running")
        ['un', '##want', '##ed', ',', 'running']
    """

    def __init__(
        self,
        vocab_file: PathLike,
        do_lower_case: bool = True,
        max_input_chars_per_word: int = 200,
    ) -> None:
        if max_input_chars_per_word < 1:
            raise ValueError(f"max_input_chars_per_word must be >= 1, got {max_input_chars_per_word}")
        self._vocab_file = os.fspath(vocab_file)
        self._vocab = load_vocab(self._vocab_file)
        self._inv_vocab = {i: t for t, i in self._vocab.items()}
        self._do_lower_case = bool(do_lower_case)
        self._max_input_chars_per_word = max_input_chars_per_word

        casing = detect_vocab_casing(self._vocab)
        if (casing == "cased" and self._do_lower_case) or (casing == "uncased" and not self._do_lower_case):
            logger.warning(
                "do_lower_case=%s but vocab file %s looks %s", self._do_lower_case, self._vocab_file, casing
            )

        # The Rust model needs an [UNK] entry; a vocab without one still tokenizes
        # (like Google, the string "[UNK]" is produced) but cannot give its id.
        words_vocab = dict(self._vocab)
        self._model_unk_id = words_vocab.setdefault(UNK_TOKEN, len(words_vocab))
        self._has_unk = UNK_TOKEN in self._vocab
        self._model_inv = {i: t for t, i in words_vocab.items()}

        classes = _char_classes()
        steps = [
            normalizers.Replace(Regex(classes.control), ""),
            normalizers.Replace(Regex(classes.whitespace), " "),
        ]
        fast_vocab = words_vocab
        self._marker_id: Optional[int] = None
        if self._do_lower_case:
            fast_vocab = dict(words_vocab)
            self._marker_id = fast_vocab[_MARKER] = len(fast_vocab)
            steps = [
                # Texts that come out with the marker id are redone on the exact path.
                normalizers.Replace(Regex(_unsafe_lower_class()), f" {_MARKER} "),
                *steps,
                normalizers.Lowercase(),
                normalizers.NFD(),
                normalizers.Replace(Regex(classes.marks), ""),
            ]
        self._rust = Tokenizer(self._wordpiece(fast_vocab))
        self._rust.normalizer = normalizers.Sequence(steps)
        self._rust.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(" +"), behavior="removed"),
                pre_tokenizers.Split(Regex(classes.split), behavior="isolated"),
            ]
        )
        # WordPiece alone, for the words of the exact Python basic tokenizer.
        self._rust_words = Tokenizer(self._wordpiece(words_vocab))

    def _wordpiece(self, vocab: Dict[str, int]) -> models.WordPiece:
        return models.WordPiece(
            vocab,
            unk_token=UNK_TOKEN,
            max_input_chars_per_word=self._max_input_chars_per_word,
            continuing_subword_prefix="##",
        )

    # -- properties ----------------------------------------------------------

    @property
    def vocab(self) -> Dict[str, int]:
        """Token to id (the line number in the vocab file)."""
        return self._vocab

    @property
    def inv_vocab(self) -> Dict[int, str]:
        """Id to token."""
        return self._inv_vocab

    @property
    def vocab_size(self) -> int:
        """Number of vocab entries."""
        return len(self._vocab)

    @property
    def vocab_file(self) -> str:
        """Path of the vocab file."""
        return self._vocab_file

    @property
    def max_input_chars_per_word(self) -> int:
        """Words longer than this many characters become ``[UNK]``."""
        return self._max_input_chars_per_word

    @property
    def do_lower_case(self) -> bool:
        """Whether text is lower-cased and accents stripped."""
        return self._do_lower_case

    def _special_id(self, token: str) -> int:
        try:
            return self._vocab[token]
        except KeyError:
            raise ValueError(f"vocab file {self._vocab_file} has no {token} token, which is needed here") from None

    @property
    def cls_id(self) -> int:
        """Id of ``[CLS]``."""
        return self._special_id(CLS_TOKEN)

    @property
    def sep_id(self) -> int:
        """Id of ``[SEP]``."""
        return self._special_id(SEP_TOKEN)

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]``."""
        return self._special_id(PAD_TOKEN)

    @property
    def mask_id(self) -> int:
        """Id of ``[MASK]``."""
        return self._special_id(MASK_TOKEN)

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]``."""
        return self._special_id(UNK_TOKEN)

    def __repr__(self) -> str:
        return (
            f"FullTokenizer(vocab_file={self._vocab_file!r}, do_lower_case={self._do_lower_case}, "
            f"vocab_size={self.vocab_size})"
        )

    # -- tokenization --------------------------------------------------------

    def _ids(self, texts: Sequence[TextInput]) -> List[List[int]]:
        """WordPiece ids of each text (the [UNK] id may be a stand-in, see __init__)."""
        strs = [_to_text(t) for t in texts]
        ids = [enc.ids for enc in self._rust.encode_batch_fast(strs, add_special_tokens=False)]
        if self._marker_id is not None:
            marker = self._marker_id
            exact = [i for i, row in enumerate(ids) if marker in row]
            if exact:
                words = [basic_tokenize(strs[i], self._do_lower_case) for i in exact]
                encs = self._rust_words.encode_batch_fast(words, is_pretokenized=True, add_special_tokens=False)
                for i, enc in zip(exact, encs):
                    ids[i] = enc.ids
        return ids

    def tokenize(self, text: TextInput) -> List[str]:
        """Tokenizes one text into WordPiece tokens.

        Args:
            text: a str, or UTF-8 bytes (invalid bytes are dropped, as in Google's code).

        Returns:
            The tokens, e.g. ``['un', '##want', '##ed', ',', 'running']``.
        """
        inv = self._model_inv
        return [inv[i] for i in self._ids([text])[0]]

    def tokenize_batch(self, texts: Sequence[TextInput]) -> List[List[str]]:
        """Tokenizes many texts in parallel (Rust threads).

        Args:
            texts: the texts.

        Returns:
            One token list per text.
        """
        inv = self._model_inv
        return [[inv[i] for i in row] for row in self._ids(texts)]

    def ids_batch(self, texts: Sequence[TextInput]) -> List[List[int]]:
        """WordPiece ids of many texts (no [CLS]/[SEP]), tokenized in parallel in Rust.

        Raises:
            ValueError: a text needs [UNK] and the vocab has none.
        """
        out = []
        for text, ids in zip(texts, self._ids(texts)):
            if not self._has_unk and self._model_unk_id in ids:
                raise ValueError(
                    f"vocab file {self._vocab_file} has no {UNK_TOKEN} token, which is needed "
                    f"for text {_to_text(text)!r:.80}"
                )
            out.append(ids)
        return out

    def ids_with_offsets_batch(self, texts: Sequence[str]) -> List[Tuple[List[int], Optional[List[int]]]]:
        """Ids of many texts with the character offset where each token starts.

        Offsets index the given text. They are None for a text that took the exact Python path
        (a rare character, see ``__init__``), whose ids are still exact.
        """
        strs = [_to_text(t) for t in texts]
        encodings = self._rust.encode_batch(strs, add_special_tokens=False)
        out: List[Tuple[List[int], Optional[List[int]]]] = []
        marker = self._marker_id
        exact = []
        for i, enc in enumerate(encodings):
            if marker is not None and marker in enc.ids:
                exact.append(i)
                out.append(([], None))
            else:
                out.append((enc.ids, [start for start, _ in enc.offsets]))
        if exact:
            for i, ids in zip(exact, self.ids_batch([strs[i] for i in exact])):
                out[i] = (ids, None)
        return out

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> List[int]:
        """Maps tokens to ids.

        Raises:
            KeyError: a token is not in the vocab (the message names the vocab file).
        """
        vocab = self._vocab
        try:
            return [vocab[t] for t in tokens]
        except KeyError as e:
            raise KeyError(f"token {e.args[0]!r} is not in vocab file {self._vocab_file}") from None

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> List[str]:
        """Maps ids to tokens.

        Raises:
            KeyError: an id is outside ``[0, vocab_size)``.
        """
        inv = self._inv_vocab
        try:
            return [inv[int(i)] for i in ids]
        except KeyError as e:
            raise KeyError(
                f"id {e.args[0]} is out of range for vocab file {self._vocab_file} ({self.vocab_size} entries)"
            ) from None

    # -- model inputs --------------------------------------------------------

    def encode(
        self, text_a: TextInput, text_b: Optional[TextInput] = None, max_seq_length: int = 128
    ) -> Dict[str, np.ndarray]:
        """Builds ``[CLS] A [SEP] (B [SEP])`` model inputs, as Google's run_classifier.

        Args:
            text_a: first segment.
            text_b: optional second segment.
            max_seq_length: output length; longer inputs are truncated from the end
                (pairs: one token at a time from the longer segment).

        Returns:
            Dict of int32 arrays of shape [max_seq_length]: ``input_ids`` (0-padded),
            ``input_mask`` (1 for real tokens), ``segment_ids`` (0 for A, 1 for B).
        """
        batch = self.encode_batch(
            [text_a if text_b is None else (text_a, text_b)], max_seq_length=max_seq_length
        )
        return {k: v[0] for k, v in batch.items()}

    def encode_batch(
        self,
        texts: Sequence[PairInput],
        max_seq_length: int = 128,
        pad_to_max_length: bool = True,
        *,
        return_num_truncated: bool = False,
    ) -> Dict[str, np.ndarray]:
        """Builds model inputs for a batch of texts or text pairs.

        Args:
            texts: B items, each a str (single segment) or a (str, str) pair.
            max_seq_length: maximum length L; longer inputs are truncated like
                Google's ``_truncate_seq_pair`` (pairs) or from the end (single).
            pad_to_max_length: pad to ``max_seq_length``; if False, pad only to the
                longest sequence in the batch.
            return_num_truncated: also return ``num_truncated_tokens``, int32 [B]: the
                WordPiece tokens each row lost to truncation (0 for rows that fit).

        Returns:
            Dict of int32 arrays of shape [B, L] (L = max_seq_length, or the longest
            length when ``pad_to_max_length`` is False): ``input_ids`` (0-padded,
            like Google), ``input_mask``, ``segment_ids``; with ``return_num_truncated``
            also ``num_truncated_tokens`` [B].

        Raises:
            ValueError: ``max_seq_length`` too small, a malformed item, or a vocab
                without [CLS]/[SEP]/[UNK] when they are needed.
        """
        firsts: List[TextInput] = []
        seconds: List[Tuple[int, TextInput]] = []
        for i, item in enumerate(texts):
            if isinstance(item, (str, bytes)):
                firsts.append(item)
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                firsts.append(item[0])
                seconds.append((i, item[1]))
            else:
                raise ValueError(f"texts[{i}] must be a str or a (str, str) pair, got {item!r:.80}")
        is_pair = [False] * len(firsts)
        for i, _ in seconds:
            is_pair[i] = True
        needed = 3 if seconds else 2
        if max_seq_length < needed:
            raise ValueError(
                f"max_seq_length {max_seq_length} is too small: at least {needed} positions "
                "are needed for [CLS] and [SEP]"
            )
        cls_id, sep_id = self.cls_id, self.sep_id
        ids = self.ids_batch(firsts + [t for _, t in seconds])
        ids_a, ids_b = ids[: len(firsts)], iter(ids[len(firsts):])

        rows: List[Tuple[List[int], int]] = []  # (ids, length of the A part incl. [CLS]/[SEP])
        dropped: List[int] = []  # tokens lost to truncation, per row
        for a, pair in zip(ids_a, is_pair):
            if pair:
                b = next(ids_b)
                full = len(a) + len(b)
                a, b = _truncate_seq_pair(a, b, max_seq_length - 3)
                rows.append(([cls_id, *a, sep_id, *b, sep_id], len(a) + 2))
                dropped.append(full - len(a) - len(b))
            else:
                full = len(a)
                a = a[: max_seq_length - 2]
                rows.append(([cls_id, *a, sep_id], len(a) + 2))
                dropped.append(full - len(a))

        length = max_seq_length if pad_to_max_length else max((len(r) for r, _ in rows), default=0)
        input_ids = np.zeros((len(rows), length), dtype=np.int32)
        input_mask = np.zeros((len(rows), length), dtype=np.int32)
        segment_ids = np.zeros((len(rows), length), dtype=np.int32)
        for row, (seq, len_a) in enumerate(rows):
            input_ids[row, : len(seq)] = seq
            input_mask[row, : len(seq)] = 1
            segment_ids[row, len_a : len(seq)] = 1
        out = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}
        if return_num_truncated:
            out["num_truncated_tokens"] = np.asarray(dropped, dtype=np.int32)
        return out


def _truncate_seq_pair(tokens_a: List[int], tokens_b: List[int], max_length: int) -> Tuple[List[int], List[int]]:
    """Google's ``_truncate_seq_pair``: drop the last token of the longer one (B on ties)."""
    len_a, len_b = len(tokens_a), len(tokens_b)
    while len_a + len_b > max_length:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return tokens_a[:len_a], tokens_b[:len_b]


def tokenizer_for_vocab(vocab_file: PathLike, do_lower_case: Optional[bool] = None) -> "FullTokenizer":
    """A :class:`FullTokenizer` for ``vocab_file``; ``do_lower_case`` None is decided from the vocab
    (true for uncased and Chinese vocabs), a given value is checked against it.

    Raises:
        ValueError: the vocab cannot be read, or its casing contradicts ``do_lower_case``.
    """
    vocab = load_vocab(vocab_file)
    if do_lower_case is None:
        do_lower_case = detect_vocab_casing(vocab) != "cased"
    else:
        validate_case_matches_vocab(do_lower_case, vocab, vocab_file)
    return FullTokenizer(vocab_file, do_lower_case=do_lower_case)
