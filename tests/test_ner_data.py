"""NER data: every input format from a fixture in its published layout, tag schemes, labels on first
pieces, long sentences split into windows, and bad input as clear errors that leave nothing behind."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.data.ner_data import (NerDataError, NerTask, merge_windows, read_cluener, read_conll, read_peoples_daily,
                               read_sentence_index, split_files, windows, write_ner_dataset)
from src.data.records import read_batches
from src.sample_data import fetch
from src.tokenization import FullTokenizer
from tools import create_ner_data

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ner"


@pytest.fixture(scope="module")
def zh_tokenizer():
    return FullTokenizer(fetch("vocab_zh"), do_lower_case=True)


@pytest.fixture(scope="module")
def en_tokenizer():
    return FullTokenizer(fetch("vocab_en"), do_lower_case=True)


def records(out: Path, split: str) -> dict:
    info = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    return next(read_batches(out / info["splits"][split]["file"], batch_size=10 ** 6))


def write(tmp_path, task, files, tokenizer, seq=32, **spec):
    out = tmp_path / "out"
    info = write_ner_dataset(NerTask(task, files, **spec), tokenizer, out, seq)
    return info, out


# ----------------------------------------------------------------------------- readers
def test_conll2003_columns_docstart_and_iob1(tmp_path, en_tokenizer):
    files = split_files("conll", FIXTURES / "conll2003")
    sentences = read_conll(files["train"], tag_column=3)
    assert [s.tokens[:2] for s in sentences[:2]] == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert sentences[0].tags[:3] == ["I-ORG", "O", "I-MISC"]
    assert sentences[0].lines[0] == 3  # after -DOCSTART- and the blank line
    info, out = write(tmp_path, "conll", files, en_tokenizer, tag_column=3, source_scheme="IOB1")
    assert info["source_scheme"] == "IOB1" and info["scheme"] == "IOB2"
    assert info["labels"][0] == "O"
    assert set(info["labels"]) == {"O", *(f"{p}-{t}" for p in "BI" for t in ("LOC", "MISC", "ORG", "PER"))}
    index = read_sentence_index(out / "train_sentences.jsonl")
    assert index[0]["tags"][:3] == ["B-ORG", "O", "B-MISC"]  # IOB1 I- at a chunk start becomes B-
    assert info["splits"]["train"]["entities"] == {"LOC": 4, "MISC": 5, "ORG": 3, "PER": 3}


def test_two_columns_tab_separated_and_an_unlabelled_test_file(tmp_path, en_tokenizer):
    files = split_files("conll", FIXTURES / "bio_tab")
    info, out = write(tmp_path, "conll", files, en_tokenizer)
    assert info["source_scheme"] == "IOB2"
    assert info["splits"]["test"]["has_labels"] is False and info["splits"]["test"]["sentences"] == 2
    assert info["splits"]["train"]["entities"]["PER"] == 4  # John / Smith are two B-PER entities
    index = read_sentence_index(out / "test_sentences.jsonl")
    assert index[0]["tokens"] == ["Paris", "and", "London"] and index[0]["tags"] is None


def test_labels_sit_on_the_first_word_piece(tmp_path, en_tokenizer):
    files = split_files("conll", FIXTURES / "bio_tab")
    info, out = write(tmp_path, "conll", files, en_tokenizer)
    rows = records(out, "train")
    index = read_sentence_index(out / "train_sentences.jsonl")
    labels = info["labels"]
    for row, entry in enumerate(index):
        ids, mask, tags = rows["input_ids"][row], rows["label_mask"][row], rows["label_ids"][row]
        pieces = [en_tokenizer.tokenize(t) or ["[UNK]"] for t in entry["tokens"]]
        expected_ids = en_tokenizer.convert_tokens_to_ids(["[CLS]", *[p for ps in pieces for p in ps], "[SEP]"])
        assert ids[:len(expected_ids)].tolist() == expected_ids and not ids[len(expected_ids):].any()
        starts = np.cumsum([0, *[len(p) for p in pieces[:-1]]]) + 1
        assert np.flatnonzero(mask).tolist() == starts.tolist()  # first pieces only: not [CLS]/[SEP]/##
        assert [labels[i] for i in tags[mask == 1]] == entry["tags"]
        assert not tags[mask == 0].any()  # other positions carry O (id 0), a valid id for the CRF
        assert rows["input_mask"][row].sum() == len(expected_ids)
    assert any(len(en_tokenizer.tokenize(t)) > 1 for e in index for t in e["tokens"])  # the fixture has ## pieces


def test_msra_bmes_with_crlf(tmp_path, zh_tokenizer):
    files = split_files("msra", FIXTURES / "msra")
    assert set(files) == {"train", "test"}
    sentences = read_conll(files["train"])
    assert sentences[1].tokens[:4] == list("中共中央") and sentences[1].tags[:4] == ["B-ORG", "M-ORG", "M-ORG", "E-ORG"]
    info, out = write(tmp_path, "msra", files, zh_tokenizer)
    assert info["source_scheme"] == "BMES"
    assert info["labels"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert info["splits"]["train"]["entities"] == {"LOC": 5, "ORG": 3, "PER": 3}
    entry = read_sentence_index(out / "train_sentences.jsonl")[3]
    assert entry["tokens"][:2] == ["美", "中"] and entry["tags"][:2] == ["B-LOC", "B-LOC"]  # S- -> B-


def test_zoo_underscore_spelling_kept_in_bmes(tmp_path, zh_tokenizer):
    files = split_files("conll", FIXTURES / "zoo_bmes")
    info, out = write(tmp_path, "conll", files, zh_tokenizer, scheme="BMES")
    assert info["source_scheme"] == "BMES" and info["scheme"] == "BMES"
    entry = read_sentence_index(out / "train_sentences.jsonl")[0]
    assert entry["tags"][:4] == ["B-ORG", "M-ORG", "M-ORG", "E-ORG"]


def test_cluener_spans_and_unlabelled_test(tmp_path, zh_tokenizer):
    files = split_files("cluener", FIXTURES / "cluener")
    sentences = read_cluener(files["train"])
    assert sentences[0].tags[9:12] == ["B-name", "I-name", "I-name"]
    info, out = write(tmp_path, "cluener", files, zh_tokenizer, seq=24)
    assert "cluener_macro_f1" in info["metrics"]
    assert info["splits"]["test"]["has_labels"] is False
    assert info["splits"]["train"]["entities"]["organization"] == 5
    assert info["splits"]["train"]["split_sentences"] >= 1  # seq 24: long texts are split, not cut
    index = read_sentence_index(out / "test_sentences.jsonl")
    assert [e["id"] for e in index] == ["0", "1"]


def test_peoples_daily_merges_surname_and_given_name(tmp_path, zh_tokenizer):
    path = FIXTURES / "peoples_daily" / "199801.txt"
    train = read_peoples_daily(path, split="train")
    dev, test = read_peoples_daily(path, split="dev"), read_peoples_daily(path, split="test")
    assert (len(train), len(dev), len(test)) == (10, 1, 1)  # paragraphs 8 and 9 (mod 10)
    second = train[1]
    assert "".join(second.tokens[-3:]) == "江泽民" and second.tags[-3:] == ["B-PER", "I-PER", "I-PER"]
    assert second.tags[:4] == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"]
    info, _ = write(tmp_path, "peoples_daily", split_files("peoples_daily", path.parent), zh_tokenizer)
    assert info["labels"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


# ----------------------------------------------------------------------------- windows
def test_windows_split_at_token_boundaries():
    assert windows([1, 1, 1], 5) == [(0, 3)]
    assert windows([2, 2, 2], 4) == [(0, 2), (2, 3)]
    assert windows([9, 1], 4) == [(0, 1), (1, 2)]  # a token longer than a window gets one of its own
    assert windows([], 4) == [(0, 0)]


def test_long_sentences_become_several_rows_and_merge_back(tmp_path, zh_tokenizer):
    files = split_files("msra", FIXTURES / "msra")
    info, out = write(tmp_path, "msra", files, zh_tokenizer, seq=6)  # 4 characters per row
    index = read_sentence_index(out / "train_sentences.jsonl")
    split = info["splits"]["train"]
    assert split["split_sentences"] == sum(len(e["rows"]) > 1 for e in index) > 0
    assert split["examples"] == sum(len(e["rows"]) for e in index)
    rows = records(out, "train")
    per_row = [rows["label_ids"][r][rows["label_mask"][r] == 1] for r in range(split["examples"])]
    merged = merge_windows(index, per_row)
    labels = info["labels"]
    assert [[labels[i] for i in ids] for ids in merged] == [e["tags"] for e in index]


# ----------------------------------------------------------------------------- invalid sequences
def test_invalid_sequences_are_counted_not_hidden(tmp_path, en_tokenizer, caplog):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("a O\nb I-PER\n\nc B-PER\nd I-PER\n\ne O\nf I-LOC\ng I-LOC\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        info, out = write(tmp_path, "conll", {"train": data / "train.txt"}, en_tokenizer, source_scheme="IOB2")
    split = info["splits"]["train"]
    assert (split["invalid_sentences"], split["invalid_tags"]) == (2, 2)
    assert any("break the IOB2 scheme" in r.message for r in caplog.records)
    index = read_sentence_index(out / "train_sentences.jsonl")
    assert index[0]["tags"] == ["O", "I-PER"]  # same scheme: kept exactly as read


# ----------------------------------------------------------------------------- bad input
BAD = {
    "tag not in the label list": ("dev.txt", "x B-FOO\n", "dev.txt:1: tag 'B-FOO' is not in the label list"),
    "no tag": ("train.txt", "a O\nb\n", "train.txt:2: no tag after token 'b'"),
    "three columns": ("train.txt", "a X O\nb Y O\n", "train.txt:1: 3 columns"),
    "tag fits no scheme": ("train.txt", "a O\nb Q-PER\n", "train.txt:2: tag 'Q-PER' fits no tag scheme"),
    "empty file": ("train.txt", "\n\n", "train.txt has no sentences"),
    "columns change": ("train.txt", "a O\nb c O\n", "train.txt:2: 3 columns"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_conll_input_is_a_clear_error_and_leaves_nothing(case, tmp_path, capsys):
    name, text, message = BAD[case]
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("w B-PER\nv O\n", encoding="utf-8")
    (data / "dev.txt").write_text("w B-PER\n", encoding="utf-8")
    (data / name).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    code = create_ner_data.main(["--task", "conll", "--data_dir", str(data), "--vocab_file", str(fetch("vocab_en")),
                                 "--output_dir", str(out), "--progress", "false"])
    assert code == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_cluener_span_that_does_not_match_its_text(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"text": "叶老桂博士", "label": {"name": {"叶老": [[0, 2]]}}}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    with pytest.raises(NerDataError, match=r"train.json:1: name entity '叶老' at \[0, 2\], but the text there is '叶老桂'"):
        read_cluener(path)
    path.write_text(json.dumps({"text": "叶老桂", "label": {"name": {"叶老桂": [[1, 3]]}}}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    with pytest.raises(NerDataError, match=r"train.json:1: span \[1, 3\] of name '叶老桂' is not \[start, end\] inside"):
        read_cluener(path)


def test_a_labels_file_fixes_the_order_with_o_first(tmp_path, en_tokenizer):
    files = split_files("conll", FIXTURES / "bio_tab")
    labels = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    info, _ = write(tmp_path, "conll", files, en_tokenizer, labels=labels)
    assert info["labels"] == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
