"""Exact-output tests of src.tokenization on a tiny hand-written vocab.

The first cases mirror google-research/bert's tokenization_test.py; the rest pin the
edge cases of Google's semantics (control characters, whitespace, punctuation,
accents, CJK, the Greek final sigma, 200-character words) and the encode API.
"""
from __future__ import annotations

import logging
import pickle
import re

import numpy as np
import pytest

from src.tokenization import (
    FullTokenizer,
    basic_tokenize,
    check_vocab_size,
    detect_vocab_casing,
    load_vocab,
    validate_case_matches_vocab,
)

# Google's test vocab first (so the ids match tokenization_test.py), then extras.
GOOGLE_VOCAB = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ","]
EXTRA_VOCAB = [
    "[PAD]", "[MASK]", "hello", "how", "are", "you", "!", "?", "ah", "zz", "\u535a", "\u63a8",
    "$", "`", ".", "-", "^", "\u00ab", "\u00bb", "\u3002", "a", "##a", "unaff", "##ab", "##affable",
    "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2",  # οδυσσευς, with final sigma
    "\u03c3\u03b1\u03c2",  # σας
]
CASED_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "HeLLo", "how", "Are", "yoU", "!", "?", "H\u00e9llo", "hello",
]


def write_vocab(path, tokens):
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab(tmp_path / "vocab.txt", GOOGLE_VOCAB + EXTRA_VOCAB)


@pytest.fixture
def tokenizer(vocab_file):
    return FullTokenizer(vocab_file, do_lower_case=True)


@pytest.fixture
def cased_tokenizer(tmp_path):
    return FullTokenizer(write_vocab(tmp_path / "cased.txt", CASED_VOCAB), do_lower_case=False)


# --- Google's tokenization_test.py -----------------------------------------------------


def test_full_tokenizer(tokenizer):
    tokens = tokenizer.tokenize("UNwant\u00E9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [7, 4, 5, 10, 8, 9]


def test_chinese_characters_are_split(tokenizer):
    assert basic_tokenize("ah\u535A\u63A8zz") == ["ah", "\u535A", "\u63A8", "zz"]
    assert tokenizer.tokenize("ah\u535A\u63A8zz") == ["ah", "\u535A", "\u63A8", "zz"]


def test_lower_case(tokenizer):
    assert tokenizer.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert tokenizer.tokenize("H\u00E9llo") == ["hello"]


def test_no_lower_case(cased_tokenizer):
    assert cased_tokenizer.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["HeLLo", "!", "how", "Are", "yoU", "?"]


def test_wordpiece(tokenizer):
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]


def test_convert_tokens_to_ids(tokenizer):
    tokens = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == list(range(10))
    assert tokenizer.convert_ids_to_tokens(range(10)) == tokens


@pytest.mark.parametrize("char", [" ", "\t", "\r", "\n", "\u00A0", "\u3000", "\u2028", "\u1680"])
def test_whitespace_splits(tokenizer, char):
    assert tokenizer.tokenize(f"want{char}want") == ["want", "want"]


@pytest.mark.parametrize("char", ["\x00", "\x05", "\x7f", "\u200b", "\u200d", "\ufeff", "\ufffd", "\u0085", "\x0b"])
def test_control_characters_are_removed(tokenizer, char):
    assert tokenizer.tokenize(f"wa{char}nt") == ["want"]


@pytest.mark.parametrize("char", ["-", "$", "`", ".", "^", "\u00ab", "\u00bb", "\u3002"])
def test_punctuation_is_split(tokenizer, char):
    # "$", "`", "^" are not Unicode punctuation, but Google counts all ASCII non-alphanumerics.
    assert tokenizer.tokenize(f"want{char}want") == ["want", char, "want"]
    assert tokenizer.tokenize(f"{char}{char}") == [char, char]


# --- accents, casing, scripts --------------------------------------------------------


def test_symbols_stay_inside_words(tokenizer):
    # Emoji (So) are neither control, whitespace nor punctuation for Google.
    assert tokenizer.tokenize("want\U0001F4A9 \U0001F4A9") == ["[UNK]", "[UNK]"]
    assert tokenizer.tokenize("want \U0001F4A9want") == ["want", "[UNK]"]


def test_accents_stripped_when_uncased_kept_when_cased(tokenizer, cased_tokenizer):
    assert tokenizer.tokenize("H\u00e9llo He\u0301llo HELLO") == ["hello", "hello", "hello"]
    assert cased_tokenizer.tokenize("H\u00e9llo") == ["H\u00e9llo"]
    assert cased_tokenizer.tokenize("hello") == ["hello"]
    # Cased: no normalisation at all, so the decomposed spelling is another word.
    assert cased_tokenizer.tokenize("He\u0301llo") == ["[UNK]"]


def test_greek_final_sigma_like_python(tokenizer):
    # Rust lower-cases every Σ to σ; Google (str.lower) gives ς at the end of a word.
    assert tokenizer.tokenize("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3") == ["οδυσσευς"]
    assert tokenizer.tokenize("\u03a3\u0391\u03a3.") == ["σας", "."]
    batch = ["want", "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 want", "unwanted", "\u03a3\u0391\u03a3"]
    assert tokenizer.tokenize_batch(batch) == [["want"], ["οδυσσευς", "want"], ["un", "##want", "##ed"], ["σας"]]


def test_private_use_and_late_cjk_characters_as_google(tokenizer):
    # Google keeps private-use characters (HF's stock BertNormalizer deletes them) and
    # treats U+2B820.. as CJK (HF's stock BertNormalizer starts at U+2B920).
    assert tokenizer.tokenize("want\ue000") == ["[UNK]"]
    assert tokenizer.tokenize("ah\U0002B820zz") == ["ah", "[UNK]", "zz"]


def test_long_words_become_unk(tokenizer, vocab_file):
    assert tokenizer.tokenize("a" * 200) == ["a"] + ["##a"] * 199
    assert tokenizer.tokenize("a" * 201) == ["[UNK]"]
    assert tokenizer.tokenize("a" * 201 + " want") == ["[UNK]", "want"]
    short = FullTokenizer(vocab_file, max_input_chars_per_word=5)
    assert short.max_input_chars_per_word == 5
    assert short.tokenize("aaaaa aaaaaa") == ["a", "##a", "##a", "##a", "##a", "[UNK]"]


def test_greedy_longest_match_does_not_backtrack(tokenizer):
    # "unaff" is the longest prefix; "##able" then fails, although un + ##affable would fit.
    assert tokenizer.tokenize("unaffable") == ["[UNK]"]
    assert tokenizer.tokenize("unaffab") == ["unaff", "##ab"]


# --- API --------------------------------------------------------------------------------


def test_tokenize_batch_matches_tokenize(tokenizer):
    texts = ["UNwant\u00E9d,running", "", "ah\u535A\u63A8zz", "\u03a3\u0391\u03a3", "how are you?"]
    assert tokenizer.tokenize_batch(texts) == [tokenizer.tokenize(t) for t in texts]
    assert tokenizer.tokenize_batch([]) == []


def test_bytes_input_decoded_like_google(tokenizer):
    assert tokenizer.tokenize("UNwant\u00E9d".encode("utf-8")) == ["un", "##want", "##ed"]
    assert tokenizer.tokenize(b"want\xffed") == ["want", "##ed"]  # invalid bytes are dropped
    with pytest.raises(TypeError, match="expected str or bytes, got int"):
        tokenizer.tokenize(3)


def test_properties(tokenizer, vocab_file):
    assert tokenizer.vocab_size == len(GOOGLE_VOCAB + EXTRA_VOCAB)
    assert tokenizer.vocab["want"] == 3
    assert tokenizer.inv_vocab[3] == "want"
    assert tokenizer.do_lower_case is True
    assert tokenizer.vocab_file == str(vocab_file)
    assert (tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id) == (0, 1, 2)
    assert (tokenizer.pad_id, tokenizer.mask_id) == (11, 12)


def test_missing_special_token_names_the_vocab(tmp_path):
    path = write_vocab(tmp_path / "v.txt", ["[UNK]", "[CLS]", "[SEP]", "want"])
    tok = FullTokenizer(path)
    with pytest.raises(ValueError, match=rf"vocab file {re.escape(str(path))} has no \[MASK\] token"):
        tok.mask_id
    assert tok.encode("want", max_seq_length=4)["input_ids"].tolist() == [1, 3, 2, 0]
    no_cls = FullTokenizer(write_vocab(tmp_path / "w.txt", ["[UNK]", "[SEP]", "want"]))
    with pytest.raises(ValueError, match=r"has no \[CLS\] token"):
        no_cls.encode("want")


def test_vocab_without_unk(tmp_path):
    tok = FullTokenizer(write_vocab(tmp_path / "v.txt", ["[CLS]", "[SEP]", "want"]))
    assert tok.tokenize("want wanted") == ["want", "[UNK]"]  # as Google: the string, no id
    assert tok.encode("want")["input_ids"][:3].tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match=r"has no \[UNK\] token, which is needed for text 'want wanted'"):
        tok.encode("want wanted")


def test_convert_errors_name_the_vocab(tokenizer):
    with pytest.raises(KeyError, match="token 'nope' is not in vocab file"):
        tokenizer.convert_tokens_to_ids(["want", "nope"])
    with pytest.raises(KeyError, match="id 999 is out of range"):
        tokenizer.convert_ids_to_tokens([999])
    assert tokenizer.convert_ids_to_tokens(np.array([3, 4])) == ["want", "##want"]


def test_pickle_roundtrip(tokenizer):
    clone = pickle.loads(pickle.dumps(tokenizer))
    assert clone.tokenize("UNwant\u00E9d,running \u03a3\u0391\u03a3") == tokenizer.tokenize(
        "UNwant\u00E9d,running \u03a3\u0391\u03a3"
    )


# --- encode -----------------------------------------------------------------------------

CLS, SEP, WANT, UN, RUNN, ING, COMMA = 1, 2, 3, 7, 8, 9, 10


def test_encode_single(tokenizer):
    out = tokenizer.encode("want running", max_seq_length=8)
    assert sorted(out) == ["input_ids", "input_mask", "segment_ids"]
    assert all(v.dtype == np.int32 and v.shape == (8,) for v in out.values())
    assert out["input_ids"].tolist() == [CLS, WANT, RUNN, ING, SEP, 0, 0, 0]
    assert out["input_mask"].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert out["segment_ids"].tolist() == [0] * 8


def test_encode_pair(tokenizer):
    out = tokenizer.encode("want", "running", max_seq_length=8)
    assert out["input_ids"].tolist() == [CLS, WANT, SEP, RUNN, ING, SEP, 0, 0]
    assert out["input_mask"].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    assert out["segment_ids"].tolist() == [0, 0, 0, 1, 1, 1, 0, 0]


def test_encode_truncates_single_from_the_end(tokenizer):
    out = tokenizer.encode("want , running ,", max_seq_length=5)  # 5 tokens, room for 3
    assert out["input_ids"].tolist() == [CLS, WANT, COMMA, RUNN, SEP]
    assert out["input_mask"].tolist() == [1] * 5


def test_encode_truncates_pairs_like_google(tokenizer):
    # Google's _truncate_seq_pair: drop the last token of the longer segment, B on ties.
    a = "want , running , want"  # 6 tokens: want , runn ##ing , want
    out = tokenizer.encode(a, "un , un", max_seq_length=9)  # room for 6: A 6 -> 3, B 3
    assert out["input_ids"].tolist() == [CLS, WANT, COMMA, RUNN, SEP, UN, COMMA, UN, SEP]
    out = tokenizer.encode("want , want", "un , un", max_seq_length=8)  # room for 5: tie -> B loses
    assert out["input_ids"].tolist() == [CLS, WANT, COMMA, WANT, SEP, UN, COMMA, SEP]
    assert out["segment_ids"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]


def test_encode_batch(tokenizer):
    texts = ["want", ("want", "running"), "unwanted running"]
    out = tokenizer.encode_batch(texts, max_seq_length=7)
    assert all(v.dtype == np.int32 and v.shape == (3, 7) for v in out.values())
    assert out["input_ids"].tolist() == [
        [CLS, WANT, SEP, 0, 0, 0, 0],
        [CLS, WANT, SEP, RUNN, ING, SEP, 0],
        [CLS, UN, 4, 5, RUNN, ING, SEP],
    ]
    assert out["segment_ids"].tolist()[1] == [0, 0, 0, 1, 1, 1, 0]
    assert out["input_mask"].sum(axis=1).tolist() == [3, 6, 7]
    for i, text in enumerate(texts):
        single = tokenizer.encode(*((text,) if isinstance(text, str) else text), max_seq_length=7)
        assert all(np.array_equal(single[k], out[k][i]) for k in out)


def test_encode_batch_pads_to_longest(tokenizer):
    out = tokenizer.encode_batch(["want", ["want", "running"]], max_seq_length=128, pad_to_max_length=False)
    assert out["input_ids"].shape == (2, 6)
    assert out["input_ids"].tolist() == [[CLS, WANT, SEP, 0, 0, 0], [CLS, WANT, SEP, RUNN, ING, SEP]]
    out = tokenizer.encode_batch(["want " * 50], max_seq_length=16, pad_to_max_length=False)
    assert out["input_ids"].shape == (1, 16)
    empty = tokenizer.encode_batch([], max_seq_length=16)
    assert empty["input_ids"].shape == (0, 16) and empty["input_ids"].dtype == np.int32


def test_encode_errors(tokenizer):
    with pytest.raises(ValueError, match="max_seq_length 2 is too small: at least 3"):
        tokenizer.encode("want", "want", max_seq_length=2)
    with pytest.raises(ValueError, match="max_seq_length 1 is too small: at least 2"):
        tokenizer.encode_batch(["want"], max_seq_length=1)
    with pytest.raises(ValueError, match=r"texts\[1\] must be a str or a \(str, str\) pair"):
        tokenizer.encode_batch(["want", ("a", "b", "c")])


# --- vocab loading and checks --------------------------------------------------------------


def test_load_vocab_ids_are_line_numbers(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"[PAD]\r\n  want \nwa\n\n##ed")  # CRLF, padding, an empty line, no final newline
    assert load_vocab(path) == {"[PAD]": 0, "want": 1, "wa": 2, "": 3, "##ed": 4}


def test_load_vocab_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab file .*missing.txt does not exist"):
        load_vocab(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="vocab file .*empty.txt is empty"):
        load_vocab(tmp_path / "empty.txt")
    write_vocab(tmp_path / "dup.txt", ["[PAD]", "want", "wa", "want "])
    with pytest.raises(ValueError, match=r"dup.txt has duplicate token 'want' on lines 2 and 4"):
        load_vocab(tmp_path / "dup.txt")
    (tmp_path / "latin1.txt").write_bytes(b"[PAD]\nwant\ncaf\xe9\n")
    with pytest.raises(ValueError, match=r"vocab file .*latin1.txt is not valid UTF-8 \(byte offset 14, line 3\)"):
        load_vocab(tmp_path / "latin1.txt")
    with pytest.raises(ValueError, match="max_input_chars_per_word must be >= 1, got 0"):
        FullTokenizer(write_vocab(tmp_path / "ok.txt", ["[UNK]"]), max_input_chars_per_word=0)


def test_check_vocab_size(tokenizer, vocab_file):
    n = tokenizer.vocab_size
    check_vocab_size(tokenizer, n)
    check_vocab_size(tokenizer.vocab, n, vocab_file)
    check_vocab_size(n, n + 8, allow_larger_model=True)
    message = "has {} entries but the model config says vocab_size 21128$"
    with pytest.raises(ValueError, match=rf"^vocab file {re.escape(str(vocab_file))} " + message.format(n)):
        check_vocab_size(tokenizer, 21128)
    with pytest.raises(ValueError, match=r"^vocab file x/vocab\.txt " + message.format(30522)):
        check_vocab_size(30522, 21128, "x/vocab.txt")
    with pytest.raises(ValueError, match="has 40 entries but the model config says vocab_size 32"):
        check_vocab_size(40, 32, allow_larger_model=True)


def test_detect_vocab_casing():
    assert detect_vocab_casing(GOOGLE_VOCAB + ["<S>", "[unused3]"]) == "uncased"
    assert detect_vocab_casing(CASED_VOCAB) == "cased"
    assert detect_vocab_casing(["[PAD]", "[UNK]", "\u535a", "\u63a8"]) == "unknown"
    assert detect_vocab_casing(["Word"] + [f"w{i}" for i in range(200)]) == "unknown"
    assert detect_vocab_casing({"Paris": 0, "paris": 1}) == "cased"


def test_validate_case_matches_vocab(caplog, tmp_path):
    validate_case_matches_vocab(True, GOOGLE_VOCAB)
    validate_case_matches_vocab(False, CASED_VOCAB)
    validate_case_matches_vocab(False, ["\u535a"])  # unknown casing: nothing to check
    with pytest.raises(ValueError, match=r"do_lower_case=True but vocab file cased.txt is cased"):
        validate_case_matches_vocab(True, CASED_VOCAB, "cased.txt")
    with pytest.raises(ValueError, match=r"do_lower_case=False but vocab file .* is uncased"):
        validate_case_matches_vocab(False, GOOGLE_VOCAB)
    with caplog.at_level(logging.WARNING, logger="src.tokenization"):
        FullTokenizer(write_vocab(tmp_path / "v.txt", GOOGLE_VOCAB), do_lower_case=False)
    assert "do_lower_case=False but vocab file" in caplog.text and "looks uncased" in caplog.text
