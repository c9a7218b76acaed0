"""src.tokenization.FullTokenizer against Google's FullTokenizer (bert-tensorflow) on real text.

* English: every non-empty line of the real Wikipedia sample dump (through
  wikiextractor), bert-base-uncased vocab; also the ids of HuggingFace's
  ``BertTokenizerFast`` loaded from the MiniLM checkpoint directory.
* Chinese: every paragraph of People's Daily 1998-01 (POS tags stripped) and every
  line of fortunes-zh ``chinese`` (ANSI colour escapes stripped), bert-base-chinese
  vocab, ``do_lower_case=True``.
* Every code point of Unicode planes 0-3 and 14 (and a sample of the others) in
  three contexts, with a vocab of all single characters, so each word's exact
  characters are visible in the output (no [UNK] hides a difference).

There are no known differences: every comparison must be identical (see
docs/tokenizer.md). Counts are printed; run with ``-s`` to see them.
"""
from __future__ import annotations

import importlib.util
import re

import pytest

# The references (bert-tensorflow needs TensorFlow) are imported only when a test runs.
for _reference in ("tensorflow", "bert", "transformers"):
    if importlib.util.find_spec(_reference) is None:
        pytest.skip(f"reference package {_reference} is not installed", allow_module_level=True)

from src.sample_data import fetch  # noqa: E402
from src.tokenization import FullTokenizer  # noqa: E402

# Lines where our tokens may legitimately differ from Google's, per corpus: none.
KNOWN_DIFFERENCES: dict[str, frozenset[int]] = {"wikipedia": frozenset(), "peoples_daily": frozenset(),
                                                "fortunes_zh": frozenset()}


@pytest.fixture(scope="module")
def google():
    """bert-tensorflow's tokenization module (its absl flags must count as parsed)."""
    from absl import flags

    flags.FLAGS.mark_as_parsed()
    from bert import tokenization

    return tokenization


@pytest.fixture(scope="session")
def wiki_lines(wiki_articles) -> list[str]:
    """Every non-empty line of the wikiextractor output (conftest's ``wiki_articles``)."""
    return [line for article in wiki_articles for line in article["text"].split("\n") if line.strip()]


@pytest.fixture(scope="session")
def peoples_daily_lines() -> list[str]:
    """People's Daily paragraphs as plain text: ``迈向/v  充满/v`` -> ``迈向充满``."""
    text = fetch("peoples_daily").read_text(encoding="utf-8")
    return ["".join(w.rsplit("/", 1)[0] for w in line.split()) for line in text.split("\n") if line.strip()]


@pytest.fixture(scope="session")
def fortunes_zh_lines() -> list[str]:
    """Every non-empty line of the ``%``-separated fortunes-zh ``chinese`` records."""
    text = (fetch("fortunes_zh") / "chinese").read_text(encoding="utf-8")
    # ANSI colour escapes; a few are interrupted by another one ("\x1b[;\x1b[34;1mm"),
    # so remove until none is left.
    escape = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
    while escape.search(text):
        text = escape.sub("", text)
    return [line for line in text.split("\n") if line.strip() and line.strip() != "%"]


def compare(name: str, google_tok, ours: FullTokenizer, lines: list[str]) -> None:
    expected = [google_tok.tokenize(line) for line in lines]
    got = ours.tokenize_batch(lines)
    differing = frozenset(i for i, (e, g) in enumerate(zip(expected, got)) if e != g)
    tokens = sum(map(len, expected))
    print(f"\n{name}: {len(lines)} lines, {sum(map(len, lines))} characters, {tokens} tokens, "
          f"{len(differing)} lines differ")
    examples = [(lines[i][:80], expected[i][:20], got[i][:20]) for i in sorted(differing)[:3]]
    assert differing == KNOWN_DIFFERENCES[name], examples
    assert len(got) == len(lines)


def test_wikipedia_matches_google(google, wiki_lines):
    vocab = fetch("vocab_en")
    assert len(wiki_lines) > 5000
    compare("wikipedia", google.FullTokenizer(str(vocab), do_lower_case=True),
            FullTokenizer(vocab, do_lower_case=True), wiki_lines)


def test_wikipedia_ids_match_huggingface(wiki_lines):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(fetch("minilm")), model_max_length=1 << 20)  # no length warning
    assert type(hf).__name__ == "BertTokenizerFast"
    ours = FullTokenizer(fetch("vocab_en"), do_lower_case=True)
    expected = hf(wiki_lines, add_special_tokens=True, truncation=False, padding=False)["input_ids"]
    batch = ours.encode_batch(wiki_lines, max_seq_length=4096, pad_to_max_length=False)
    assert batch["input_ids"].shape[1] < 4096, "a line was truncated"
    got = [row[mask == 1].tolist() for row, mask in zip(batch["input_ids"], batch["input_mask"])]
    differing = [i for i, (e, g) in enumerate(zip(expected, got)) if e != g]
    print(f"\nwikipedia vs BertTokenizerFast: {len(wiki_lines)} lines, {sum(map(len, expected))} ids, "
          f"{len(differing)} lines differ")
    assert differing == [], [wiki_lines[i][:80] for i in differing[:3]]


def test_peoples_daily_matches_google(google, peoples_daily_lines):
    vocab = fetch("vocab_zh")
    assert len(peoples_daily_lines) == 19484
    compare("peoples_daily", google.FullTokenizer(str(vocab), do_lower_case=True),
            FullTokenizer(vocab, do_lower_case=True), peoples_daily_lines)


def test_fortunes_zh_matches_google(google, fortunes_zh_lines):
    vocab = fetch("vocab_zh")
    assert len(fortunes_zh_lines) > 20000
    assert not any("\x1b" in line for line in fortunes_zh_lines)
    compare("fortunes_zh", google.FullTokenizer(str(vocab), do_lower_case=True),
            FullTokenizer(vocab, do_lower_case=True), fortunes_zh_lines)


@pytest.fixture(scope="module")
def code_points() -> list[int]:
    """Planes 0-3 (all assigned characters so far) and 14, plus every 4097th other code point."""
    wanted = set(range(0x40000)) | set(range(0xE0000, 0xE1000)) | set(range(0x40000, 0x110000, 0x1001))
    return sorted(cp for cp in wanted if not 0xD800 <= cp < 0xE000)


@pytest.fixture(scope="module")
def char_vocab(tmp_path_factory, code_points):
    """A vocab of every character ``c`` and ``##c``: WordPiece then spells each word out."""
    chars = [chr(cp) for cp in code_points if chr(cp).strip() == chr(cp)]  # whitespace cannot be a token
    path = tmp_path_factory.mktemp("charvocab") / "vocab.txt"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("[UNK]\n")
        f.writelines(f"{c}\n" for c in chars)
        f.writelines(f"##{c}\n" for c in chars)
    return path


@pytest.mark.parametrize("do_lower_case", [True, False], ids=["uncased", "cased"])
def test_every_code_point_matches_google(google, char_vocab, code_points, do_lower_case):
    texts = [f"AB{chr(cp)}cd {chr(cp)} x{chr(cp)}" for cp in code_points]
    # Σ routes a text to the exact Python path; check that path on a sample too.
    texts += [f"\u03a3{chr(cp)}\u03a3 \u03a3" for cp in code_points[::7]]
    reference = google.FullTokenizer(str(char_vocab), do_lower_case)
    expected = [reference.tokenize(t) for t in texts]
    got = FullTokenizer(char_vocab, do_lower_case=do_lower_case).tokenize_batch(texts)
    differing = [(hex(ord(texts[i][2])), expected[i], got[i]) for i in range(len(texts)) if expected[i] != got[i]]
    print(f"\ncode points, do_lower_case={do_lower_case}: {len(texts)} texts, "
          f"{sum(map(len, expected))} tokens, {len(differing)} differ")
    assert differing == [], differing[:5]
