"""Pretraining train-step throughput: this project's TrainStep against HuggingFace BertForPreTraining.

Both sides train the same architecture on the same random batch (float32, CPU, dropout 0.1,
global-norm clipping at 1.0, AdamW, seq 128, vocab 30,522, 20 masked positions):

* ours: ``BertPretrainingLoss`` + ``TrainStep`` (dynamic loss scale on) + bias-corrected AdamW
  (``adamw.bias_correction``, the update of ``torch.optim.AdamW``) from ``build_optimizer``, GRAPH
  mode, compiled once (the first call, timed separately), then ``--warmup`` steps, then the median
  of ``--steps`` steps, each synchronised with ``.asnumpy()``.
  The MLM head runs on the gathered masked positions only (Google's BERT and the zoo).
* HuggingFace: ``transformers.BertForPreTraining`` (``NezhaForPreTraining`` for the ``-nezha``
  configs: functional relative positions, K = 64) in train mode on PyTorch, ``torch.optim.AdamW``
  (weight decay 0.01 off LayerNorm and biases, as ours),
  loss = MLM cross-entropy (labels -100 except at the masked positions) + NSP cross-entropy,
  backward, ``clip_grad_norm_(1.0)``, step; ``torch.set_num_threads(2)``; same warm-up and median.
  It computes MLM logits at every position (S of them instead of P): that is how the model is
  written, and it is reported as is.

MFU = achieved FLOP/s / measured MindSpore float32 matmul peak (``run_pretrain.measure_matmul_peak``,
best of 5), with one FLOP count for both sides: ``run_pretrain.training_flops_per_sequence`` of the
gathered-MLM model, so HF's MFU does not credit its extra MLM logits (a line under the table
gives HF's rate counting them). Each measurement runs in a fresh process, one after another
(MindSpore and PyTorch never share a process), and reports how many cores other processes used
meanwhile: PyTorch's step in particular slows down several-fold when another process takes a core,
so only runs with about 0 background are worth pasting::

    python benchmarks/bench_pretrain_step.py                  # about 2 minutes on 2 quiet cores
    python benchmarks/bench_pretrain_step.py --configs small --steps 5
    python benchmarks/bench_pretrain_step.py --configs small,small-nezha,base4,base4-nezha   # NEZHA vs BERT
    python benchmarks/bench_pretrain_step.py --configs small,small-nezha --steps 10 --rounds 3   # medians of 3 rounds
    python benchmarks/bench_pretrain_step.py --profile small  # our step by operator type
    python benchmarks/bench_pretrain_step.py --profile small-nezha --operators 80   # + the 80 slowest operators

Prints a Markdown table (pasted into BENCHMARKS.md) and, with ``--json PATH``, writes the raw
numbers. ``--profile CONFIG`` instead runs our step under ``mindspore.Profiler`` (it works on CPU)
and prints milliseconds per step by operator type.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (machine_line, print_profile, profile_steps, spawn, time_hf_steps,  # noqa: E402
                               time_steps, worker_peak)
from src.runtime import write_json  # noqa: E402

VOCAB = 30522
SEQ = 128
PREDICTIONS = 20
# name -> (hidden, layers, heads, intermediate, batch)
CONFIGS = {
    "small": dict(hidden=256, layers=4, heads=4, intermediate=1024, batch=32),
    "base4": dict(hidden=768, layers=4, heads=12, intermediate=3072, batch=16),
}
DESCRIPTIONS = {
    "small": "H=256, 4 layers, 4 heads, I=1024, batch 32",
    "base4": "BERT-base width (H=768, 12 heads, I=3072), 4 layers, batch 16",
}
# NEZHA (functional relative positions, K = 64, no position table) of each size: "small-nezha", ...
NEZHA_K = 64
for _name in list(CONFIGS):
    CONFIGS[f"{_name}-nezha"] = dict(CONFIGS[_name], relative=True)
    DESCRIPTIONS[f"{_name}-nezha"] = f"NEZHA (K={NEZHA_K}), {DESCRIPTIONS[_name]}"


def make_batch(batch: int, seed: int = 0) -> dict:
    """A random pretraining batch as numpy arrays (the 7 record columns); ~10% padding."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(int(SEQ * 0.8), SEQ + 1, size=batch)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1000, VOCAB, size=(batch, SEQ)).astype(np.int32) * mask
    segments = ((np.arange(SEQ)[None, :] >= (lengths // 2)[:, None]) & (mask == 1)).astype(np.int32)
    positions = np.stack([np.sort(rng.choice(np.arange(1, n - 1), PREDICTIONS, replace=False))
                          for n in lengths]).astype(np.int32)
    return {
        "input_ids": ids, "input_mask": mask, "segment_ids": segments,
        "next_sentence_labels": rng.integers(0, 2, size=(batch, 1)).astype(np.int32),
        "masked_lm_positions": positions,
        "masked_lm_ids": rng.integers(1000, VOCAB, size=(batch, PREDICTIONS)).astype(np.int32),
        "masked_lm_weights": np.ones((batch, PREDICTIONS), np.float32),
    }


def model_config(name: str):
    from src.config import BertConfig

    c = CONFIGS[name]
    return BertConfig(seq_length=SEQ, vocab_size=VOCAB, hidden_size=c["hidden"], num_hidden_layers=c["layers"],
                      num_attention_heads=c["heads"], intermediate_size=c["intermediate"],
                      use_relative_positions=c.get("relative", False), max_relative_position=NEZHA_K)


# --------------------------------------------------------------------------------------
# Workers (each runs in its own process)
# --------------------------------------------------------------------------------------
def worker_ours(name: str, steps: int, warmup: int, profile: bool = False) -> dict:
    """Time our train step; with ``profile``, then run ``steps`` more under ``mindspore.Profiler``."""
    import mindspore as ms

    from src.config import AdamWeightDecayConfig, OptimizerConfig
    from src.optimization import build_optimizer
    from src.training import BertPretrainingLoss, TrainStep

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ms.set_seed(0)
    config = model_config(name)
    network = BertPretrainingLoss(config)
    network.set_train(True)
    # no warmup, lr 1e-4 as on the HF side, so that the loss visibly moves (a sanity check, not a cost)
    optimizer_config = OptimizerConfig(optimizer="adamw",
                                       adamw=AdamWeightDecayConfig(learning_rate=1e-4, warmup_steps=0,
                                                                   weight_decay=0.01, bias_correction=True))
    optimizer = build_optimizer(optimizer_config, network.trainable_params(), 1000)
    step = TrainStep(network, optimizer, loss_scale=65536.0, clip_norm=1.0)
    batch = make_batch(CONFIGS[name]["batch"])
    tensors = [ms.Tensor(batch[k]) for k in ("input_ids", "input_mask", "segment_ids", "next_sentence_labels",
                                             "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")]

    def run() -> tuple[float, float, bool]:
        start = time.perf_counter()
        loss, _, overflow, _, _ = step(*tensors)
        value = float(loss.asnumpy())
        return time.perf_counter() - start, value, bool(overflow.asnumpy())

    result, results = time_steps(run, steps, warmup, "compile_and_first_step_s")
    result["overflow_steps"] = sum(o for *_, o in results)
    if profile:
        result.update(profile_steps(run, steps))
    return result


def worker_hf(name: str, steps: int, warmup: int, threads: int) -> dict:
    os.environ.setdefault("USE_TF", "0")
    import torch
    import transformers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = CONFIGS[name]
    sizes = dict(vocab_size=VOCAB, hidden_size=c["hidden"], num_hidden_layers=c["layers"],
                 num_attention_heads=c["heads"], intermediate_size=c["intermediate"], hidden_act="gelu",
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=512,
                 type_vocab_size=2, layer_norm_eps=1e-12)
    if c.get("relative"):
        model = transformers.NezhaForPreTraining(transformers.NezhaConfig(**sizes, max_relative_position=NEZHA_K))
    else:
        model = transformers.BertForPreTraining(transformers.BertConfig(**sizes))
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
         {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0}],
        lr=1e-4, eps=1e-6)
    batch = make_batch(c["batch"])
    labels = torch.full((c["batch"], SEQ), -100, dtype=torch.long)
    positions = torch.from_numpy(batch["masked_lm_positions"]).long()
    labels.scatter_(1, positions, torch.from_numpy(batch["masked_lm_ids"]).long())
    inputs = dict(input_ids=torch.from_numpy(batch["input_ids"]).long(),
                  attention_mask=torch.from_numpy(batch["input_mask"]).long(),
                  token_type_ids=torch.from_numpy(batch["segment_ids"]).long(),
                  labels=labels, next_sentence_label=torch.from_numpy(batch["next_sentence_labels"]).long().view(-1))

    # HF's loss: MLM cross-entropy over the non -100 labels + NSP cross-entropy
    return time_hf_steps(model, optimizer, inputs, steps, warmup)


def relative_flops_per_sequence(name: str) -> float:
    """NEZHA's matmul FLOPs per sequence beyond BERT's (``training_flops_per_sequence``): in every layer and
    head, ``Q Tᵀ`` and ``W T`` over the table rows a sequence reaches forward, ``dC Tᵀ`` and ``dSb T`` backward
    (the functional table takes no gradient); 0 for BERT."""
    c = CONFIGS[name]
    if not c.get("relative"):
        return 0.0
    rows = min(2 * NEZHA_K, NEZHA_K + SEQ - 1) - max(0, NEZHA_K - SEQ + 1) + 1
    return c["layers"] * 4 * 2 * SEQ * rows * c["hidden"]  # heads x head size = hidden


def summarize(name: str, rounds: list[dict], peak: float) -> dict:
    """One table row from a config's rounds: the median seq/s and MFU of each side, and each round's
    ours / HF ratio (the two measured back to back)."""
    from run_pretrain import training_flops_per_sequence

    batch = CONFIGS[name]["batch"]
    flops = training_flops_per_sequence(model_config(name), SEQ, PREDICTIONS)
    for m in rounds:
        for side in ("ours", "hf"):
            m[f"{side}_seq_per_s"] = batch / m[side]["median_s"]
    row = {"config": name, "description": DESCRIPTIONS[name], "batch": batch, "flops_per_sequence": flops,
           "rounds": rounds, "ours_over_hf": [m["ours_seq_per_s"] / m["hf_seq_per_s"] for m in rounds],
           # HF's own FLOPs: the MLM transform and decoder at every one of the S positions
           "hf_own_flops_per_sequence": training_flops_per_sequence(model_config(name), SEQ, SEQ)}
    for side in ("ours", "hf"):
        row[f"{side}_seq_per_s"] = statistics.median(m[f"{side}_seq_per_s"] for m in rounds)
        row[f"{side}_mfu"] = row[f"{side}_seq_per_s"] * flops / (peak * 1e12)
    # the bound of our step if all its matmul FLOPs (NEZHA's relative terms included) ran at the peak
    own = flops + relative_flops_per_sequence(name)
    row["ceiling_seq_per_s"] = peak * 1e12 / own
    row["ours_share_of_peak"] = row["ours_seq_per_s"] / row["ceiling_seq_per_s"]
    return row


def ratio_text(ratios: list[float]) -> str:
    """``3.52x``, or with several rounds their median and range: ``3.52x (3.45-3.60x)``."""
    text = f"{statistics.median(ratios):.2f}x"
    return text if len(ratios) == 1 else f"{text} ({min(ratios):.2f}-{max(ratios):.2f}x)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="small,base4,small-nezha",
                        help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=7, help="timed steps (median reported)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every config this many times, each time in fresh processes (rounds interleaved "
                             "over the configs); the table shows the medians over the rounds and the ranges of the "
                             "ratios")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (compiling) one")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--peak-seconds", type=float, default=1.0)
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--profile", metavar="CONFIG",
                        help="instead of the comparison: profile our step on CONFIG with mindspore.Profiler and "
                             "print milliseconds per step by operator type")
    parser.add_argument("--operators", type=int, default=0, metavar="N",
                        help="with --profile, also list the N slowest single operators (forward and Gradients/)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "peak":
            result = worker_peak(args.peak_seconds)
        elif kind in ("ours", "profile"):
            result = worker_ours(rest[0], args.steps, args.warmup, profile=kind == "profile")
        else:
            result = worker_hf(rest[0], args.steps, args.warmup, args.threads)
        print(json.dumps(result))
        return 0

    start = time.perf_counter()
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
              "--peak-seconds", str(args.peak_seconds)]
    if args.profile:
        if args.profile not in CONFIGS:
            parser.error(f"unknown config {args.profile!r}; choose from {', '.join(CONFIGS)}")
        print_profile(f"{DESCRIPTIONS[args.profile]}, seq {SEQ}", spawn(__file__, ["profile", args.profile, *common]),
                      args.steps, operators=args.operators)
        return 0
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; choose from {', '.join(CONFIGS)}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    peak = spawn(__file__, ["peak", *common])["peak_tflops"]
    measured: dict[str, list] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            ours = spawn(__file__, ["ours", name, *common])
            hf = spawn(__file__, ["hf", name, *common])
            measured[name].append({"ours": ours, "hf": hf})
            print(f"{name}{f' (round {round_ + 1})' if args.rounds > 1 else ''}: ours {ours['median_s']:.3f} s/step "
                  f"(compile+first {ours['compile_and_first_step_s']:.1f} s, loss {ours['first_loss']:.3f}->"
                  f"{ours['last_loss']:.3f}, overflow {ours['overflow_steps']}), HF {hf['median_s']:.3f} s/step "
                  f"(loss {hf['first_loss']:.3f}->{hf['last_loss']:.3f}, attention {hf['attn_implementation']}); "
                  f"other processes used {ours['background_cores']:.2f} / {hf['background_cores']:.2f} cores during "
                  "the two runs", file=sys.stderr, flush=True)
    rows = [summarize(name, measured[name], peak) for name in names]
    elapsed = time.perf_counter() - start

    background = max((m[side]["background_cores"] for r in rows for m in r["rounds"] for side in ("ours", "hf")),
                     default=0.0)
    print(f"{machine_line(rows[0]['rounds'][0]['hf'] if rows else None, args.threads)}; "
          f"seq {SEQ}, vocab {VOCAB}, {PREDICTIONS} masked positions, float32, dropout 0.1, clip 1.0; "
          f"median of {args.steps} steps after {args.warmup} warm-up steps"
          f"{f', then the median of {args.rounds} rounds in fresh processes' if args.rounds > 1 else ''}; "
          "MindSpore fp32 matmul peak (best of 5) "
          f"{peak * 1e3:.0f} GFLOP/s; {elapsed:.0f} s in all; other processes used up to {background:.2f} "
          f"cores during a measurement\n")
    print("| config | ours seq/s | HF seq/s | ours / HF | ours MFU | HF MFU |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['description']} | {r['ours_seq_per_s']:.1f} | {r['hf_seq_per_s']:.1f} | "
              f"{ratio_text(r['ours_over_hf'])} | {r['ours_mfu']:.1%} | {r['hf_mfu']:.1%} |")
    if rows:
        print("\nCounting HF's own FLOPs (MLM logits at all " + str(SEQ) + " positions): " + "; ".join(
            f"{r['config']}: {r['hf_own_flops_per_sequence'] / r['flops_per_sequence']:.1f}x the gathered model's, "
            f"HF {r['hf_seq_per_s'] * r['hf_own_flops_per_sequence'] / 1e9:.0f} GFLOP/s vs ours "
            f"{r['ours_seq_per_s'] * r['flops_per_sequence'] / 1e9:.0f} GFLOP/s" for r in rows))
        print("\nAt the measured peak (every matmul FLOP of our step at that rate, nothing else taking time): "
              + "; ".join(f"{r['config']}: {r['ceiling_seq_per_s']:.1f} seq/s = "
                          f"{r['ceiling_seq_per_s'] / r['hf_seq_per_s']:.2f}x HF, where 4x HF needs "
                          f"{4 * r['hf_seq_per_s'] / r['ceiling_seq_per_s']:.0%} of it (ours: "
                          f"{r['ours_share_of_peak']:.0%})" for r in rows))
    by_name = {r["config"]: r for r in rows}
    for r in rows:
        bert = by_name.get(r["config"].removesuffix("-nezha")) if r["config"].endswith("-nezha") else None
        if bert:
            ours = [n["ours_seq_per_s"] / b["ours_seq_per_s"] for n, b in zip(r["rounds"], bert["rounds"])]
            hf = [n["hf_seq_per_s"] / b["hf_seq_per_s"] for n, b in zip(r["rounds"], bert["rounds"])]
            print(f"\n{r['config']}: our NEZHA step at {ratio_text(ours)} our BERT step of the same size "
                  f"(HF: {ratio_text(hf)}){', the same round' if args.rounds > 1 else ''}; NEZHA's MFU counts "
                  "BERT's FLOPs (its relative terms are extra work not credited)")
    if args.json:
        write_json(args.json, {"peak_tflops": peak, "rows": rows, "seconds": elapsed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
