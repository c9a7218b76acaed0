"""Fine-tuning on real data against HuggingFace: MiniLM on the rt-polarity movie-review sentences.

Both sides fine-tune the real all-MiniLM-L6-v2 weights (``fetch("minilm")``) for binary sentiment on
the vaderSentiment movie-review snippets (ratings > 0 positive, < 0 negative, zeros dropped; the fixed
split of ``tools/create_classifier_data.py --task rt_polarity``), on the SAME token ids (the records
made by this project's tools are read back for the PyTorch side), with the same hyperparameters
(configs/classifier_rt_polarity.yaml: the same optimizer update on both sides, bias-corrected AdamW
(``adamw.bias_correction: true`` here, ``torch.optim.AdamW`` there; eps 1e-6), lr 5e-5, 10% linear
warmup then linear decay, weight decay 0.01
except LayerNorm and biases, batch 32 with the last partial batch dropped, dropout 0.1, clip 1.0,
seq 64), over the same seeds. Per seed, ours (``run_classifier.py``, GRAPH mode) and then
HuggingFace (transformers 4.46.3 ``BertForSequenceClassification``, PyTorch 2.13 CPU,
``torch.optim.AdamW``, 2 threads) run in fresh processes one after the other::

    .venv/bin/python benchmarks/finetune_rt_polarity.py                 # 3 seeds, about 40 minutes on 2 cores
    .venv/bin/python benchmarks/finetune_rt_polarity.py --seeds 1 --epochs 0.2   # a quick look

Reported per side: dev accuracy (every dev example), training samples/s over the whole training
loop (ours includes graph compilation in its first steps) and in steady state (after the first
logged window), and the cores other processes used meanwhile. Prints a Markdown table (pasted into
BENCHMARKS.md and the README) and writes the raw numbers with ``--json PATH``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import run_measured, train_hf  # noqa: E402

CONFIG = ROOT / "configs" / "classifier_rt_polarity.yaml"


def prepare(work: Path) -> tuple[Path, Path]:
    """The converted MiniLM checkpoint and the rt_polarity records (made once, then reused)."""
    from src.sample_data import fetch

    minilm = fetch("minilm")
    converted = work / "minilm.ckpt"
    if not converted.exists():
        subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "--input", str(minilm),
                        "--output", str(converted)], check=True)
    records = work / "records"
    if not (records / "dataset.json").exists():
        subprocess.run([sys.executable, str(ROOT / "tools" / "create_classifier_data.py"), "--task", "rt_polarity",
                        "--vocab_file", str(minilm / "vocab.txt"), "--max_seq_length", "64",
                        "--output_dir", str(records)], check=True)
    return converted, records


def ours(seed: int, converted: Path, records: Path, out: Path, epochs: float) -> dict:
    cmd = [sys.executable, str(ROOT / "run_classifier.py"), "--config", str(CONFIG), "--data_dir", str(records),
           "--init_checkpoint", str(converted), "--output_dir", str(out), f"--seed={seed}", f"--epochs={epochs}",
           "--resume=false", "--progress=false", "--keep_checkpoint_max=1"]
    wall, background = run_measured(cmd, ROOT)
    results = json.loads((out / "all_results.json").read_text())
    windows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    windows = [w for w in windows if w["event"] == "train"]
    steady = windows[1:] or windows
    return {"dev_accuracy": results["dev_accuracy"], "samples_per_second": results["train_samples_per_second"],
            "steady_samples_per_second": statistics.median(w["samples_per_second"] for w in steady),
            "train_loss": results["train_loss"], "wall_s": wall, "background_cores": background}


def hf(seed: int, records: Path, out: Path, epochs: float) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--hf-worker", "--seed", str(seed), "--records", str(records),
           "--epochs", str(epochs), "--out", str(out / "hf_results.json")]
    wall, background = run_measured(cmd, ROOT)
    results = json.loads((out / "hf_results.json").read_text())
    results.update(wall_s=wall, background_cores=background)
    return results


def hf_worker(seed: int, records: Path, epochs: float, out: Path) -> None:
    """HuggingFace fine-tuning on the records' token ids (runs in its own process)."""
    os.environ.setdefault("USE_TF", "0")
    import numpy as np
    import torch
    from transformers import BertForSequenceClassification

    from src.config import ClassifierConfig, parse_config
    from src.data.records import read_batches
    from src.sample_data import fetch

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    config = parse_config(ClassifierConfig, ["--config", str(CONFIG)])
    info = json.loads((records / "dataset.json").read_text())

    def load(split: str) -> dict:
        batch = next(read_batches(records / info["splits"][split]["file"], batch_size=10 ** 7))
        return {k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in batch.items()}

    train, dev = load("train"), load("dev")
    model = BertForSequenceClassification.from_pretrained(
        str(fetch("minilm")), num_labels=len(info["labels"]), hidden_dropout_prob=config.model.hidden_dropout_prob,
        attention_probs_dropout_prob=config.model.attention_probs_dropout_prob)

    def batch_loss(idx):
        return model(input_ids=train["input_ids"][idx], attention_mask=train["input_mask"][idx],
                     token_type_ids=train["segment_ids"][idx], labels=train["label_ids"][idx].reshape(-1)).loss

    trained = train_hf(model, batch_loss, len(train["label_ids"]), config, epochs, seed)
    correct = 0
    with torch.no_grad():
        for b in range(0, len(dev["label_ids"]), config.eval_batch_size):
            sl = slice(b, b + config.eval_batch_size)
            logits = model(input_ids=dev["input_ids"][sl], attention_mask=dev["input_mask"][sl],
                           token_type_ids=dev["segment_ids"][sl]).logits
            correct += int((logits.argmax(-1) == dev["label_ids"][sl].reshape(-1)).sum())
    trained.pop("train_steps")
    result = {"dev_accuracy": correct / len(dev["label_ids"]), **trained, "dev_examples": len(dev["label_ids"])}
    out.write_text(json.dumps(result, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=float, default=None, help="default: the config's epochs")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "finetune_rt_polarity"))
    parser.add_argument("--json", default="", help="write the raw numbers here")
    parser.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--records", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hf_worker:
        hf_worker(args.seed, Path(args.records), args.epochs, Path(args.out))
        return 0

    from src.config import ClassifierConfig, parse_config

    epochs = args.epochs or parse_config(ClassifierConfig, ["--config", str(CONFIG)]).epochs
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    converted, records = prepare(work)
    rows = []
    for seed in args.seeds:
        row = {"seed": seed, "ours": ours(seed, converted, records, work / f"ours-{seed}", epochs),
               "hf": hf(seed, records, work / f"hf-{seed}", epochs)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    info = json.loads((records / "dataset.json").read_text())
    mean = {side: {k: statistics.mean(r[side][k] for r in rows) for k in
                   ("dev_accuracy", "samples_per_second", "steady_samples_per_second", "background_cores")}
            for side in ("ours", "hf")}
    print(f"\nrt-polarity: {info['splits']['train']['examples']:,} train / {info['splits']['dev']['examples']:,} dev "
          f"sentences, MiniLM-L6-H384, seq 64, batch 32, {epochs:g} epochs, seeds {', '.join(map(str, args.seeds))}\n")
    print("| seed | ours dev acc | HF dev acc | ours samples/s | HF samples/s | ours steady | HF steady | background cores |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows + [{"seed": "mean", **mean}]:
        o, h = r["ours"], r["hf"]
        print(f"| {r['seed']} | {o['dev_accuracy']:.4f} | {h['dev_accuracy']:.4f} | {o['samples_per_second']:.1f} | "
              f"{h['samples_per_second']:.1f} | {o['steady_samples_per_second']:.1f} | "
              f"{h['steady_samples_per_second']:.1f} | {o['background_cores']:.2f} / {h['background_cores']:.2f} |")
    print(f"\nmean dev accuracy difference (ours - HF): {100 * (mean['ours']['dev_accuracy'] - mean['hf']['dev_accuracy']):+.2f} "
          f"points; training samples/s ours / HF: {mean['ours']['samples_per_second'] / mean['hf']['samples_per_second']:.2f}x "
          f"(steady state {mean['ours']['steady_samples_per_second'] / mean['hf']['steady_samples_per_second']:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps({"epochs": epochs, "rows": rows, "mean": mean}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
