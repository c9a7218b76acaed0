"""run_pretrain.py end to end at tiny scale: outputs, resume after SIGKILL, bad input, msrun data parallel."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from src.config import PretrainingDataConfig
from src.data.pretraining_pipeline import create_pretraining_data

ROOT = Path(__file__).resolve().parent.parent
WORDS = 200
TINY = ["--model", "bert_tiny", f"--model.vocab_size={WORDS + 7}", "--model.seq_length=32",
        "--model.max_position_embeddings=32", "--model.hidden_dropout_prob=0", "--model.attention_probs_dropout_prob=0",
        "--optimizer.optimizer=adamw", "--optimizer.adamw.learning_rate=1e-3", "--optimizer.adamw.warmup_steps=2",
        "--progress=false", "--log_every=1", "--batch_size=4"]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict:
    """Records (seq 32) from a synthetic corpus and a 207-entry vocab: train/eval with 5 predictions,
    and "uniform" where every record has exactly 3 masked positions (no short records)."""
    root = tmp_path_factory.mktemp("pretrain_data")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(WORDS)]
                               + ["##s", "##ing"]) + "\n", encoding="utf-8")
    out = {"vocab": vocab}
    for name, seed, docs, words, extra in (("train", 1, 80, (4, 20), {}), ("eval", 2, 10, (4, 20), {}),
                                          ("uniform", 3, 40, (10, 20),
                                           {"max_predictions_per_seq": 3, "short_seq_prob": 0.0})):
        rng = random.Random(seed)
        lines = []
        for _ in range(docs):
            lines += [" ".join(f"w{rng.randint(0, WORDS - 1)}" for _ in range(rng.randint(*words)))
                      for _ in range(rng.randint(2, 8))] + [""]
        text = root / f"{name}.txt"
        text.write_text("\n".join(lines) + "\n", encoding="utf-8")
        settings = {"max_predictions_per_seq": 5, **extra}
        create_pretraining_data(PretrainingDataConfig(
            input_file=[str(text)], output_dir=str(root / name), vocab_file=str(vocab), max_seq_length=32,
            dupe_factor=2, progress=False, **settings))
        out[name] = root / name
    return out


def run_pretrain(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, GLOG_v="3")
    return subprocess.run([sys.executable, str(ROOT / "run_pretrain.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=600, **kwargs)


def train_losses(output: Path) -> dict[int, float]:
    """Loss per step from metrics.jsonl (the last record of a step wins: a resumed run repeats steps)."""
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["event"] == "train"}


def test_pretrain_end_to_end(records, tmp_path):
    out = tmp_path / "run"
    result = run_pretrain([*TINY, f"--data_dir={records['train']}", f"--eval_data_dir={records['eval']}",
                           f"--output_dir={out}", "--train_steps=8", "--save_checkpoint_steps=3",
                           "--keep_checkpoint_max=2", "--eval_train_batches=2"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(train_losses(out)) == list(range(1, 9))
    assert "held-out: MLM accuracy" in result.stdout
    assert "training records (2 batches): MLM accuracy" in result.stdout
    metrics = json.loads((out / "eval_results.json").read_text())
    assert {"mlm_accuracy", "mlm_perplexity", "nsp_accuracy", "unigram_accuracy"} <= set(metrics)
    assert metrics["train_sample"]["sequences"] == 2 * 4 and 0 <= metrics["train_sample"]["nsp_accuracy"] <= 1
    assert (out / "loss_curve.png").stat().st_size > 1000 and (out / "config.yaml").exists()
    assert [p.name for p in sorted((out / "checkpoints").glob("*.ckpt"))] == ["pretrain-00000006.ckpt",
                                                                             "pretrain-00000008.ckpt"]
    # pretrain_eval.py on the last checkpoint gives the same metrics as the end of the run
    evaluated = subprocess.run([sys.executable, str(ROOT / "pretrain_eval.py"), f"--run_config={out / 'config.yaml'}",
                                f"--checkpoint={out / 'checkpoints' / 'pretrain-00000008.ckpt'}",
                                f"--data_dir={records['eval']}", "--batch_size=4", f"--output={tmp_path / 'e.json'}"],
                               cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads((tmp_path / "e.json").read_text())
    for key in ("mlm_accuracy", "mlm_perplexity", "nsp_accuracy", "unigram_accuracy", "masked_tokens"):
        assert again[key] == pytest.approx(metrics[key], rel=1e-5), key
    # the training checkpoint loads into a fine-tuning network: only the classifier is new
    from src.checkpoint import load_checkpoint_into
    from src.config import BertConfig, from_dict, load_yaml
    from src.heads import BertForSequenceClassification
    model = from_dict(BertConfig, load_yaml(out / "config.yaml")["model"])
    report = load_checkpoint_into(BertForSequenceClassification(model, 2), out / "checkpoints" / "pretrain-00000008.ckpt")
    assert report.initialized == ["classifier.bias", "classifier.weight"]
    assert set(report.unused.values()) == {"optimizer or training state", "no such parameter in this network"}
    assert all(k.startswith("cls.") for k, why in report.unused.items() if why.startswith("no such"))
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"step", "loss", "mlm_loss", "nsp_loss", "lr", "loss_scale", "overflow_steps",
            "samples_per_second", "mfu"} <= set(row)


def test_resume_after_sigkill_continues_exactly(records, tmp_path):
    """A run killed with SIGKILL and restarted continues with the same optimizer state, step,
    loss scale, data position and dropout masks: its losses equal an uninterrupted run's, with
    dropout 0.1."""
    # batch 16: an epoch is about 30 batches, so the run crosses an epoch (new shuffle order);
    # window 3: the loss scale changes during the run
    common = [*TINY, f"--data_dir={records['train']}", "--train_steps=40", "--save_checkpoint_steps=4",
              "--keep_checkpoint_max=20", "--loss_scale.window=3", "--batch_size=16",
              "--model.hidden_dropout_prob=0.1", "--model.attention_probs_dropout_prob=0.1"]
    reference = run_pretrain([*common, f"--output_dir={tmp_path / 'reference'}"])
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(ROOT / "run_pretrain.py"), *common, f"--output_dir={out}"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, GLOG_v="3"))
    deadline = time.time() + 300
    while not (out / "checkpoints" / "pretrain-00000008.ckpt").exists():
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(int(p.stem.split("-")[1]) for p in (out / "checkpoints").glob("pretrain-*.ckpt"))
    assert 8 <= saved[-1] < 40, saved

    resumed = run_pretrain([*common, f"--output_dir={out}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and f"at step {saved[-1]}" in resumed.stderr
    expected, got = train_losses(tmp_path / "reference"), train_losses(out)
    epochs = {json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()}
    assert len(epochs) >= 2, "the run should cross an epoch boundary"
    assert sorted(got) == sorted(expected) == list(range(1, 41))
    for step in range(saved[-1] + 1, 41):
        assert abs(got[step] - expected[step]) <= 1e-6, (step, got[step], expected[step])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 41))  # each step once after the resume


def test_bad_input_fails_before_training(records, tmp_path):
    base = [*TINY, f"--output_dir={tmp_path / 'out'}", "--train_steps=2"]
    missing = run_pretrain([*base, f"--data_dir={tmp_path / 'nowhere'}"])
    assert missing.returncode == 1 and "nowhere does not exist" in missing.stderr
    longer = run_pretrain([*base, f"--data_dir={records['train']}", "--model.seq_length=16",
                           "--model.max_position_embeddings=16"])
    assert longer.returncode == 1 and "seq_length 32 in" in longer.stderr and "16 in the config" in longer.stderr
    smaller_vocab = run_pretrain([*base, f"--data_dir={records['train']}", "--model.vocab_size=50"])
    assert smaller_vocab.returncode == 1 and "vocab_size 50" in smaller_vocab.stderr
    # a corrupt newest checkpoint stops the resume with a clear message, before any step
    checkpoints = tmp_path / "out" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "pretrain-00000001.ckpt").write_bytes(b"\x00not a checkpoint")
    corrupt = run_pretrain([*base, f"--data_dir={records['train']}"])
    assert corrupt.returncode == 1 and "cannot resume from" in corrupt.stderr
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_continued_pretraining_from_a_zoo_nezha_checkpoint(records, tmp_path):
    """A checkpoint with the MindSpore zoo's names (NEZHA, learned K = 16 table, Lamb moments) is
    converted and pretraining continues from it: every weight loaded, none freshly initialised."""
    from src.checkpoint import network_state, read_checkpoint, save_mindspore_checkpoint
    from src.config import BertConfig, save_yaml
    from src.heads import BertForPreTraining
    from tools import convert_checkpoint

    zoo_model = BertConfig(vocab_size=WORDS + 7, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=37, seq_length=32, use_relative_positions=True,
                           relative_position_type="learned", max_relative_position=16, hidden_act="gelu_new",
                           layer_norm_eps=1e-7)
    ours = tmp_path / "trained_here.ckpt"
    save_mindspore_checkpoint(network_state(BertForPreTraining(zoo_model)), ours)
    save_yaml(zoo_model, ours.with_suffix(".yaml"))
    zoo = tmp_path / "zoo" / "nezha.ckpt"
    assert convert_checkpoint.main(["--to", "zoo", "--input", str(ours), "--output", str(zoo)]) == 0
    state = {k: v for k, v in read_checkpoint(ours).params.items()}
    zoo_state = {k: v.asnumpy() for k, v in __import__("mindspore").load_checkpoint(str(zoo)).items()}
    zoo_state.update({"lamb_m." + k: v for k, v in list(zoo_state.items())[:3]}, global_step=np.array([9], np.int32))
    zoo.unlink()
    zoo.with_suffix(".yaml").unlink()
    save_mindspore_checkpoint(zoo_state, zoo, crc_check=False)
    converted = tmp_path / "converted.ckpt"
    assert convert_checkpoint.main(["--input", str(zoo), "--output", str(converted)]) == 0
    out = tmp_path / "run"
    result = run_pretrain(["--model", str(converted.with_suffix(".yaml")), "--model.seq_length=32",
                           *TINY[TINY.index("--optimizer.optimizer=adamw"):], f"--data_dir={records['train']}",
                           f"--output_dir={out}", "--train_steps=2", f"--init_checkpoint={converted}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded 47 parameters, 0 freshly initialised, 0 checkpoint keys unused" in result.stderr + result.stdout
    assert sorted(train_losses(out)) == [1, 2]
    loaded = read_checkpoint(converted).params
    assert sorted(loaded) == sorted(state) and all(np.array_equal(loaded[k], state[k]) for k in state)


def test_incomplete_records_and_a_missing_eval_dir_are_refused_before_training(records, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(records["train"], data)
    summary = json.loads((data / "pretrain-summary.json").read_text())
    gone = data / summary["shards"][0]["file"]
    gone.unlink()
    base = [*TINY, f"--output_dir={tmp_path / 'out'}", "--train_steps=2"]
    missing = run_pretrain([*base, f"--data_dir={data}"])
    assert missing.returncode == 1 and f"{gone.name} is missing" in missing.stderr, missing.stderr[-2000:]
    assert "--overwrite true" in missing.stderr
    no_eval = run_pretrain([*base, f"--data_dir={records['train']}", f"--eval_data_dir={tmp_path / 'nowhere'}"])
    assert no_eval.returncode == 1 and "nowhere does not exist" in no_eval.stderr, no_eval.stderr[-2000:]
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_msrun_two_workers_equal_one_worker_with_twice_the_batch(records, tmp_path):
    """Data parallel on loopback: 2 CPU workers of batch 4 give the losses of 1 worker of batch 8.
    Every record has the same number of masked positions, so per-rank loss normalisation equals the
    global one."""
    msrun = shutil.which("msrun", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if msrun is None:
        pytest.skip("msrun is not installed")
    common = [*TINY, "--train_steps=4", "--shuffle=false", "--loss_scale.enabled=false"]
    single = run_pretrain([*common, f"--data_dir={records['uniform']}", "--batch_size=8",
                           f"--output_dir={tmp_path / 'single'}"])
    assert single.returncode == 0, single.stderr[-3000:]
    env = dict(os.environ, GLOG_v="3", PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    port = str(20000 + os.getpid() % 20000)
    result = subprocess.run([msrun, "--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1",
                             f"--master_port={port}", f"--log_dir={tmp_path / 'logs'}", "--join=True",
                             str(ROOT / "run_pretrain.py"), *common, f"--data_dir={records['uniform']}",
                             "--batch_size=4", f"--output_dir={tmp_path / 'parallel'}", "--distribute=true"],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    logs = "\n".join(p.read_text() for p in sorted((tmp_path / "logs").glob("*.log")))
    assert result.returncode == 0, logs[-4000:]
    single_losses, parallel_losses = train_losses(tmp_path / "single"), train_losses(tmp_path / "parallel")
    assert sorted(parallel_losses) == [1, 2, 3, 4]
    for step, loss in single_losses.items():
        assert abs(parallel_losses[step] - loss) <= 1e-4, (step, parallel_losses[step], loss)
    assert "rank 0 reads" in logs and "rank 1 reads" in logs
