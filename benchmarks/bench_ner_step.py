"""NER train-step throughput: this project's tagger against HuggingFace BertForTokenClassification,
with the softmax head and with a CRF (ours ``src/crf.py``, theirs ``pytorch-crf``).

Both sides fine-tune the real all-MiniLM-L6-v2 checkpoint (H=384, 6 layers, 12 heads, exact erf
GELU; ``src.sample_data.fetch("minilm")``) with a fresh 7-tag classifier (MSRA's O + B/I x 3) on
the same random batch: batch 32, seq 128, 60 to 128 real tokens per row, every third token a
non-first WordPiece (label mask 0), float32, CPU, dropout 0.1, clip 1.0, the same optimizer update
on both sides (bias-corrected AdamW, lr 5e-5, weight decay 0.01 off LayerNorm and biases):

* ours: ``BertTokenClassificationLoss`` (+ ``CRF``, the mask being the label mask) + ``TrainStep``
  (loss scale off) + ``adamw.bias_correction``, GRAPH mode, compiled once (the first call, timed
  separately), then ``--warmup`` steps, then the median of ``--steps`` steps;
* HuggingFace: ``benchmarks/hf_ner.py`` (``BertForTokenClassification``; for the CRF, the labelled
  positions packed to the left and ``torchcrf.CRF``), ``torch.optim.AdamW``, backward,
  ``clip_grad_norm_(1.0)``, step; ``torch.set_num_threads(2)``; same warm-up and median.

Each measurement runs in a fresh process, one after another, and reports how many cores other
processes used meanwhile (only runs with about 0 background are worth pasting)::

    .venv/bin/python benchmarks/bench_ner_step.py                 # about 3 minutes on 2 quiet cores
    .venv/bin/python benchmarks/bench_ner_step.py --steps 5 --json ner_step.json

Prints a Markdown table (pasted into BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_line, spawn, time_steps  # noqa: E402
from src.runtime import write_json  # noqa: E402

BATCH = 32
SEQ = 128
TAGS = 7
LEARNING_RATE = 5e-5
WEIGHT_DECAY = 0.01


def make_batch(batch: int = BATCH, seq: int = SEQ, seed: int = 0) -> dict:
    """A random tagging batch: [CLS] tokens [SEP] padding; label mask on the first pieces."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(60, seq + 1, size=batch)
    positions = np.arange(seq)[None, :]
    mask = (positions < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1000, 30522, size=(batch, seq)).astype(np.int32) * mask
    ids[:, 0] = 101
    ids[np.arange(batch), lengths - 1] = 102
    label_mask = ((positions > 0) & (positions < lengths[:, None] - 1) & (positions % 3 != 0)).astype(np.int32)
    labels = rng.integers(0, TAGS, size=(batch, seq)).astype(np.int32) * label_mask
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids), "label_ids": labels,
            "label_mask": label_mask}


def minilm_dir() -> Path:
    from src.sample_data import fetch

    return fetch("minilm")


def worker_ours(steps: int, warmup: int, use_crf: bool) -> dict:
    import mindspore as ms

    from src.checkpoint import load_checkpoint_into
    from src.config import AdamWeightDecayConfig, OptimizerConfig, bert_config_from_hf
    from src.optimization import build_optimizer
    from src.training import BertTokenClassificationLoss, TrainStep

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ms.set_seed(0)
    config = bert_config_from_hf(minilm_dir(), seq_length=SEQ)
    network = BertTokenClassificationLoss(config, TAGS, use_crf=use_crf)
    load_checkpoint_into(network, minilm_dir())
    network.set_train(True)
    optimizer = build_optimizer(OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(
        learning_rate=LEARNING_RATE, warmup_steps=0, power=1.0, weight_decay=WEIGHT_DECAY, bias_correction=True)),
        network.trainable_params(), 1000)
    step = TrainStep(network, optimizer, loss_scale=None, clip_norm=1.0)
    batch = make_batch()
    tensors = [ms.Tensor(batch[k]) for k in ("input_ids", "input_mask", "segment_ids", "label_ids", "label_mask")]

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        loss = float(step(*tensors)[0].asnumpy())
        return time.perf_counter() - start, loss

    return time_steps(run, steps, warmup, "compile_and_first_step_s")[0]


def worker_hf(steps: int, warmup: int, threads: int, use_crf: bool) -> dict:
    os.environ.setdefault("USE_TF", "0")
    import torch
    import transformers

    from benchmarks.hf_ner import HFTagger

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    bert = transformers.BertForTokenClassification.from_pretrained(minilm_dir(), num_labels=TAGS)
    model = HFTagger(bert, TAGS, use_crf).train()
    no_decay = ("bias", "LayerNorm.weight")
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
          "weight_decay": WEIGHT_DECAY},
         {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0}],
        lr=LEARNING_RATE, eps=1e-6)
    batch = {k: torch.from_numpy(v).long() for k, v in make_batch().items()}

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = model(batch["input_ids"], batch["input_mask"], batch["segment_ids"], batch["label_ids"],
                     batch["label_mask"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return time.perf_counter() - start, loss.item()

    return {**time_steps(run, steps, warmup)[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first (compiling) one")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        side, head = args.worker
        if side == "ours":
            result = worker_ours(args.steps, args.warmup, head == "crf")
        else:
            result = worker_hf(args.steps, args.warmup, args.threads, head == "crf")
        print(json.dumps(result))
        return 0

    minilm_dir()
    start = time.perf_counter()
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    results = {}
    for head in ("softmax", "crf"):
        for side in ("ours", "hf"):
            results[side, head] = r = spawn(__file__, [side, head, *common])
            print(f"{side} {head}: {r['median_s']:.3f} s/step (loss {r['first_loss']:.3f}->{r['last_loss']:.3f}); "
                  f"other processes used {r['background_cores']:.2f} cores", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    background = max(r["background_cores"] for r in results.values())
    print(f"{machine_line(results['hf', 'crf'], args.threads)}; MiniLM tagger, {TAGS} tags, batch {BATCH}, seq {SEQ}, "
          f"float32, dropout 0.1, clip 1.0, bias-corrected AdamW on both sides; median of {args.steps} steps after "
          f"{args.warmup} warm-up steps; {elapsed:.0f} s in all; other processes used up to {background:.2f} cores "
          "during a measurement\n")
    print("| head | ours ms / step | ours samples/s | HF ms / step | HF samples/s | ours vs HF |\n"
          "| --- | --- | --- | --- | --- | --- |")
    rows = []
    for head, name in (("softmax", "softmax (BertForTokenClassification)"), ("crf", "CRF (pytorch-crf on HF)")):
        ours, hf = results["ours", head], results["hf", head]
        ratio = hf["median_s"] / ours["median_s"]
        rows.append({"head": head, "ours": ours, "hf": hf, "ratio": ratio})
        print(f"| {name} | {ours['median_s'] * 1e3:.0f} | {BATCH / ours['median_s']:.1f} | {hf['median_s'] * 1e3:.0f} "
              f"| {BATCH / hf['median_s']:.1f} | {ratio:.2f}x |")
    if args.json:
        write_json(args.json, {"rows": rows, "seconds": elapsed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
