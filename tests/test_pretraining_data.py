"""create_pretraining_data: Google's semantics, whole-word masking, line-by-line, determinism, bad input."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from src.config import PretrainingDataConfig
from src.data.pretraining import (GenerationStats, MaskingParams, Spans, TokenizedChunk, assemble, build_records,
                                  line_spans, mask_tokens, nsp_spans, truncated_lengths)
from src.data.pretraining_pipeline import InputError, create_pretraining_data
from src.data.records import read_records
from tests.conftest import count_whole_masked_words

CLS, SEP, MASK, VOCAB = 1, 2, 3, 1000


def params(**overrides) -> MaskingParams:
    values = dict(max_seq_length=32, max_predictions_per_seq=5, masked_lm_prob=0.15, short_seq_prob=0.1,
                  whole_word_mask=False, cls_id=CLS, sep_id=SEP, mask_id=MASK, vocab_size=VOCAB)
    values.update(overrides)
    return MaskingParams(**values)


def synthetic_chunk(rng: random.Random, num_docs=40, flags=False) -> TokenizedChunk:
    """Documents of 1-12 sentences of 3-20 tokens with ids >= 10 (distinct from specials)."""
    documents = []
    for _ in range(num_docs):
        doc = []
        for _ in range(rng.randint(1, 12)):
            ids = [rng.randint(10, VOCAB - 1) for _ in range(rng.randint(3, 20))]
            starts = [True] + [rng.random() < 0.5 for _ in ids[1:]] if flags else None
            doc.append((ids, starts))
        documents.append(doc)
    return TokenizedChunk.from_documents(documents)


def google_truncate(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    a, b = list(range(len_a)), list(range(len_b))
    while len(a) + len(b) > max_num_tokens:
        (a if len(a) > len(b) else b).pop()
    return len(a), len(b)


def test_truncated_lengths_equal_googles_loop():
    for len_a in range(1, 30):
        for len_b in range(1, 30):
            for max_num_tokens in (2, 5, 17, 29):
                assert truncated_lengths(len_a, len_b, max_num_tokens) == google_truncate(len_a, len_b, max_num_tokens)


def test_nsp_spans_respect_documents_and_lengths():
    rng = random.Random(0)
    chunk = synthetic_chunk(rng)
    p = params()
    stats = GenerationStats()
    spans = nsp_spans(chunk, p, rng, stats)
    doc_of_token = np.repeat(np.arange(chunk.num_documents),
                             np.diff(chunk.sentence_offsets[chunk.document_offsets]))
    assert len(spans) > 50
    for a_lo, a_hi, b_lo, b_hi, random_next in zip(spans.a_lo, spans.a_hi, spans.b_lo, spans.b_hi,
                                                   spans.random_next):
        assert a_hi > a_lo and b_hi > b_lo and (a_hi - a_lo) + (b_hi - b_lo) <= p.max_seq_length - 3
        assert doc_of_token[a_lo] == doc_of_token[a_hi - 1] and doc_of_token[b_lo] == doc_of_token[b_hi - 1]
        if not random_next:
            assert doc_of_token[a_lo] == doc_of_token[b_lo] and b_lo >= a_hi


def test_single_sentence_documents_always_get_a_random_next():
    chunk = TokenizedChunk.from_documents([[([11, 12, 13], None)], [([14, 15], None)], [([16, 17, 18, 19], None)]])
    spans = nsp_spans(chunk, params(), random.Random(1), GenerationStats())
    assert len(spans) == 3 and list(spans.random_next) == [1, 1, 1]


def test_records_are_well_formed():
    rng = random.Random(2)
    chunk = synthetic_chunk(rng)
    p = params()
    stats = GenerationStats()
    spans = Spans()
    for _ in range(20):
        spans.extend(nsp_spans(chunk, p, rng, stats))
    records = build_records(chunk, spans, p, True, np.random.default_rng(0), stats)
    n = len(records["input_ids"])
    assert n == len(spans) == stats.instances
    ids, mask, seg = records["input_ids"], records["input_mask"], records["segment_ids"]
    lengths = mask.sum(1)
    assert (ids[:, 0] == CLS).all() and (ids[np.arange(n), lengths - 1] == SEP).all()
    assert (ids[mask == 0] == 0).all() and (seg[mask == 0] == 0).all()
    positions, labels, weights = records["masked_lm_positions"], records["masked_lm_ids"], records["masked_lm_weights"]
    expected = np.minimum(5, np.maximum(1, np.round(lengths * 0.15)))
    np.testing.assert_array_equal(weights.sum(1), expected)
    for row in range(n):
        m = int(weights[row].sum())
        pos = positions[row, :m]
        assert (np.diff(pos) > 0).all() and (pos > 0).all() and (pos < lengths[row] - 1).all()
        assert (positions[row, m:] == 0).all() and (labels[row, m:] == 0).all()
        first_sep = int(np.argmax(seg[row] == 1)) - 1  # (a random replacement may be the SEP id)
        assert ids[row, first_sep] == SEP or first_sep in pos
        assert first_sep not in pos
        assert (seg[row, :first_sep + 1] == 0).all() and (seg[row, first_sep + 1:lengths[row]] == 1).all()
        assert (labels[row, :m] >= 10).all()  # the original tokens, never specials
    masked = stats.masked
    assert masked == int(weights.sum())
    assert abs(stats.masked_as_mask / masked - 0.8) < 0.02
    assert abs(stats.masked_kept / masked - 0.1) < 0.015 and abs(stats.masked_random / masked - 0.1) < 0.015
    kept = ids[np.arange(n)[:, None], positions] == labels
    assert abs(kept[weights > 0].mean() - 0.1) < 0.015  # kept tokens (+ the rare random hit of the same id)


def test_whole_word_masking_masks_words_together_with_one_choice():
    rng = random.Random(3)
    chunk = synthetic_chunk(rng, flags=True)
    # a huge vocab so that a random replacement is practically never the [MASK] id
    p = params(whole_word_mask=True, max_predictions_per_seq=8, vocab_size=10**9)
    spans = Spans()
    for _ in range(10):
        spans.extend(nsp_spans(chunk, p, rng, GenerationStats()))
    input_ids, _, lengths, word_starts, special = assemble(chunk, spans, p, True)
    stats = GenerationStats()
    positions, _, weights = mask_tokens(input_ids, lengths, word_starts, special, p, np.random.default_rng(5), stats)
    multi_token_words = count_whole_masked_words(input_ids, positions, weights, lengths, word_starts, special, MASK)
    assert multi_token_words > 100
    assert abs(stats.masked_as_mask / stats.masked - 0.8) < 0.03


def test_line_by_line_splits_and_packs():
    lines = [[([10 + i for i in range(n)], None)] for n in (5, 40, 3)]
    chunk = TokenizedChunk.from_documents(lines)
    p = params(max_seq_length=12)
    stats = GenerationStats()
    spans = line_spans(chunk, p, pack=False, stats=stats)
    assert [hi - lo for lo, hi in zip(spans.a_lo, spans.a_hi)] == [5, 10, 10, 10, 10, 3]
    assert stats.split_lines == 1
    packed = line_spans(chunk, p, pack=True, stats=GenerationStats())
    assert [hi - lo for lo, hi in zip(packed.a_lo, packed.a_hi)] == [10, 10, 10, 10, 8]
    records = build_records(chunk, packed, p, False, np.random.default_rng(0), GenerationStats())
    assert (records["segment_ids"] == 0).all() and (records["next_sentence_labels"] == 0).all()
    lengths = records["input_mask"].sum(1)
    assert sorted(lengths.tolist()) == [10, 12, 12, 12, 12]
    assert (records["input_ids"][np.arange(5), lengths - 1] == SEP).all()


# --------------------------------------------------------------------------------------
# The whole tool on files
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory) -> Path:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(200)] + ["##s", "##ing"]
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


def write_corpus(path: Path, seed: int, docs: int = 60) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(docs):
        for _ in range(rng.randint(1, 8)):
            lines.append(" ".join(f"w{rng.randint(0, 199)}" + rng.choice(["", "s", "ing"])
                                  for _ in range(rng.randint(3, 25))))
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(tmp_path, vocab_file, inputs, name="out", **overrides) -> tuple[dict, Path]:
    out = tmp_path / name
    cfg = PretrainingDataConfig(input_file=[str(p) for p in inputs], output_dir=str(out), vocab_file=str(vocab_file),
                                max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2, progress=False,
                                chunk_chars=3000, **overrides)
    return create_pretraining_data(cfg), out


def shard_contents(out: Path) -> dict[str, list]:
    return {p.name: [{k: v.tolist() for k, v in r.items()} for r in read_records(p)]
            for p in sorted(out.glob("*.mindrecord"))}


def test_same_seed_same_records_whatever_the_workers(tmp_path, vocab_file):
    inputs = [write_corpus(tmp_path / "a.txt", 1), write_corpus(tmp_path / "b.txt", 2)]
    one, out1 = run(tmp_path, vocab_file, inputs, "one")
    two, out2 = run(tmp_path, vocab_file, inputs, "two", num_workers=2)
    assert one["rows"] == two["rows"] > 0 and len(one["shards"]) > 2
    assert shard_contents(out1) == shard_contents(out2)
    other, out3 = run(tmp_path, vocab_file, inputs, "other", random_seed=7)
    assert shard_contents(out3) != shard_contents(out1)
    summary = json.loads((out1 / "pretrain-summary.json").read_text())
    assert summary["rows"] == sum(s["rows"] for s in summary["shards"]) == one["stats"]["instances"]


def test_tfrecord_output_and_schema(tmp_path, vocab_file):
    pytest.importorskip("tensorflow")
    summary, out = run(tmp_path, vocab_file, [write_corpus(tmp_path / "a.txt", 3)], output_format="tfrecord")
    schema = json.loads((out / "pretrain-schema.json").read_text())
    assert schema["datasetType"] == "TF" and schema["numRows"] == summary["rows"]
    assert schema["columns"]["input_ids"] == {"type": "int64", "rank": 1, "shape": [32]}
    assert schema["columns"]["masked_lm_weights"]["type"] == "float32"
    rows = sum(1 for p in out.glob("*.tfrecord") for _ in read_records(p))
    assert rows == summary["rows"]


def test_bad_inputs(tmp_path, vocab_file):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="empty.txt contains no text"):
        run(tmp_path, vocab_file, [empty])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"w1 w2\nw3 \xff\xfe w4\n")
    with pytest.raises(InputError, match=r"bad.txt: line 2 is not valid UTF-8 \(byte offset 9"):
        run(tmp_path, vocab_file, [bad])
    with pytest.raises(InputError, match="missing.txt does not exist"):
        run(tmp_path, vocab_file, [tmp_path / "missing.txt"])
    no_mask = tmp_path / "vocab_no_mask.txt"
    no_mask.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nw1\n")
    with pytest.raises(InputError, match=r"vocab_no_mask.txt has no \[MASK\] token"):
        run(tmp_path, no_mask, [write_corpus(tmp_path / "c.txt", 4)])


def test_long_lines_and_single_sentence_documents(tmp_path, vocab_file):
    text = tmp_path / "long.txt"
    text.write_text(" ".join(["w5"] * 100) + "\n\nw1 w2 w3\n\n" + " ".join(["w6"] * 10) + "\nw7 w8\n")
    summary, out = run(tmp_path, vocab_file, [text])
    records = [r for p in out.glob("*.mindrecord") for r in read_records(p)]
    assert all(r["input_mask"].sum() <= 32 for r in records)
    lines, _ = run(tmp_path, vocab_file, [text], "lines", mode="line_by_line")
    assert lines["stats"]["split_lines"] == 2  # the 100-token line, in each of the two dupe passes


def test_interrupted_run_leaves_no_shard_under_a_final_name(tmp_path, vocab_file, monkeypatch):
    from src.data import records

    def fail(self, batch):
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(records.RecordWriter, "write", fail)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, vocab_file, [write_corpus(tmp_path / "a.txt", 5)])
    assert not list((tmp_path / "out").glob("*.mindrecord*")) and not list((tmp_path / "out").glob("*summary*"))


def test_whole_word_masking_reference_file(tmp_path, vocab_file):
    text = tmp_path / "t.txt"
    text.write_text("w1 w2 w3 w4 w5 w6\nw7 w8 w9\n\nw10 w11 w12 w13\nw14 w15\n")
    ref = tmp_path / "t.ref"
    ref.write_text("[2, 3, 5, 6]\n[2, 3]\n[2, 3, 4]\n[2]\n")  # HF format: [CLS] is index 0
    summary, _ = run(tmp_path, vocab_file, [text], do_whole_word_mask=True, wwm_ref_file=[str(ref)])
    assert summary["rows"] > 0
    short_ref = tmp_path / "short.ref"
    short_ref.write_text("[2]\n")
    with pytest.raises(InputError, match="short.ref has fewer lines"):
        run(tmp_path, vocab_file, [text], "x", do_whole_word_mask=True, wwm_ref_file=[str(short_ref)])


def test_mpirun_ranks_take_their_files(tmp_path, vocab_file):
    """Under mpirun each rank processes input_file[rank::size]; the records equal a one-process run."""
    import os
    import shutil
    import subprocess
    import sys

    pytest.importorskip("mpi4py")
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("no mpirun (Debian: apt-get install openmpi-bin)")
    inputs = [write_corpus(tmp_path / f"in{k}.txt", 10 + k) for k in range(3)]
    root = Path(__file__).resolve().parent.parent
    cmd = [mpirun, "-n", "2", "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += [sys.executable, str(root / "tools" / "create_pretraining_data.py"),
            f"--input_file={','.join(map(str, inputs))}", f"--output_dir={tmp_path / 'mpi'}",
            f"--vocab_file={vocab_file}", "--max_seq_length=32", "--max_predictions_per_seq=5", "--dupe_factor=2",
            "--chunk_chars=3000", "--progress=false"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, cwd=root)
    summary = json.loads((tmp_path / "mpi" / "pretrain-summary.json").read_text())
    assert summary["ranks"] == 2
    ranks = {s["file"].split("-")[1]: s["rank"] for s in summary["shards"]}
    assert ranks == {"00000": 0, "00001": 1, "00002": 0}
    single, out = run(tmp_path, vocab_file, inputs, "single")
    assert summary["rows"] == single["rows"]
    assert shard_contents(tmp_path / "mpi") == shard_contents(out)


# --- the manifest, overwrite, interruption ---------------------------------------------------------
def test_the_summary_is_a_manifest_the_reader_checks(tmp_path, vocab_file):
    from src.data.dataset import DataMismatchError, pretraining_record_files

    summary, out = run(tmp_path, vocab_file, [write_corpus(tmp_path / "a.txt", 1), write_corpus(tmp_path / "b.txt", 2)])
    shards = summary["shards"]
    assert all(s["bytes"] == (out / s["file"]).stat().st_size and s["db_bytes"] > 0 for s in shards)
    assert pretraining_record_files(out) == sorted(out / s["file"] for s in shards)
    missing, resized = out / shards[1]["file"], out / shards[2]["file"]
    missing.rename(tmp_path / "aside.mindrecord")
    with open(resized, "ab") as f:
        f.write(b"\0")
    with pytest.raises(DataMismatchError, match=rf"(?s){missing.name} is missing.*{resized.name} has .* bytes, the "
                                                r"manifest says.*--overwrite true"):
        pretraining_record_files(out)
    (tmp_path / "aside.mindrecord").rename(missing)
    resized.write_bytes(resized.read_bytes()[:-1])
    extra = out / "pretrain-00009-0000.mindrecord"
    extra.write_bytes(b"x")
    with pytest.raises(DataMismatchError, match="pretrain-00009-0000.mindrecord is not in any manifest"):
        pretraining_record_files(out)
    extra.unlink()
    (out / "pretrain-summary.json").unlink()
    with pytest.raises(DataMismatchError, match=r"no manifest .*pass the files as a glob"):
        pretraining_record_files(out)
    assert len(pretraining_record_files(str(out / "*.mindrecord"))) == len(shards)  # a glob is read as given


def test_a_rerun_needs_overwrite_and_then_replaces_everything(tmp_path, vocab_file):
    first, out = run(tmp_path, vocab_file, [write_corpus(tmp_path / "a.txt", 1), write_corpus(tmp_path / "b.txt", 2)])
    with pytest.raises(InputError, match=r"already holds .* --overwrite true"):
        run(tmp_path, vocab_file, [write_corpus(tmp_path / "c.txt", 3)])
    second, _ = run(tmp_path, vocab_file, [write_corpus(tmp_path / "c.txt", 3)], overwrite=True)
    assert sorted(p.name for p in out.glob("*.mindrecord")) == sorted(s["file"] for s in second["shards"])
    assert not any(s["file"].startswith("pretrain-00001") for s in second["shards"])  # b.txt's shards are gone


def _children(pid: int) -> list[int]:
    import psutil

    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_an_interrupted_run_stops_its_workers_and_is_refused_then_redone(tmp_path, vocab_file, workers, how):
    """kill -9 (or Ctrl-C) in the middle: no process is left, no shard appears afterwards, the
    directory is refused for lack of a manifest; a rerun with --overwrite completes and is accepted."""
    import signal
    import subprocess
    import sys
    import time

    from src.data.dataset import DataMismatchError, pretraining_record_files

    root = Path(__file__).resolve().parent.parent
    corpus = [write_corpus(tmp_path / f"{i}.txt", i, docs=600) for i in range(2)]
    out = tmp_path / "out"
    cmd = [sys.executable, str(root / "tools" / "create_pretraining_data.py"), "--input_file", ",".join(map(str, corpus)),
           "--output_dir", str(out), "--vocab_file", str(vocab_file), "--max_seq_length", "32",
           "--max_predictions_per_seq", "5", "--dupe_factor", "2", "--chunk_chars", "2000", "--progress", "false",
           "--num_workers", str(workers)]
    process = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list(out.glob("*.mindrecord"))) < 2:
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.01)
    children = _children(process.pid)
    assert len(children) >= (workers if workers > 1 else 0)
    process.send_signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if how == "SIGINT":
        assert process.returncode == 130 and "Traceback" not in stderr and "interrupted" in stderr, stderr
    time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)], "workers outlived the main process"
    shards = sorted(out.glob("*.mindrecord"))
    time.sleep(1.0)
    assert sorted(out.glob("*.mindrecord")) == shards, "a shard was written after the main process was gone"
    assert not list(out.glob("*summary.json"))
    with pytest.raises(DataMismatchError, match="no manifest"):
        pretraining_record_files(out)
    redo = subprocess.run(cmd + ["--overwrite", "true"], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert redo.returncode == 0, redo.stderr[-2000:]
    assert len(pretraining_record_files(out)) == len(json.loads((out / "pretrain-summary.json").read_text())["shards"])
