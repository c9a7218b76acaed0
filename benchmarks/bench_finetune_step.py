"""Fine-tuning train-step throughput: this project's TrainStep against HuggingFace BertForSequenceClassification.

Both sides fine-tune the real all-MiniLM-L6-v2 checkpoint (H=384, 6 layers, 12 heads, I=1536,
vocab 30,522, exact erf GELU; ``src.sample_data.fetch("minilm")``) with a fresh 2-label
classifier on the same random batch (batch 32, seq 64, ~10% padding, float32, CPU, dropout 0.1,
global-norm clipping at 1.0, AdamW with weight decay 0.01 off LayerNorm and biases, lr 2e-5):

* ours: ``BertClassificationLoss`` (``BertForSequenceClassification`` + cross-entropy) +
  ``TrainStep`` + bias-corrected AdamW (``adamw.bias_correction``: ``src.optimization.AdamW``, the
  update of ``torch.optim.AdamW``) from ``build_optimizer``, GRAPH mode, compiled once (the
  first call, timed separately), then ``--warmup`` steps, then the median of ``--steps`` steps,
  each synchronised with ``.asnumpy()``. Measured with the dynamic loss scale on (initial scale
  2^32, fine-tuning's setting) and off (``--loss-scale both``, the default), and once more with
  the fused CPU kernels of ``src/fused_ops.py`` switched off (``BERT_ZOO_FUSED_KERNELS=0``: the
  standard MindSpore operators) unless ``--no-standard-ops``.
* HuggingFace: ``transformers.BertForSequenceClassification`` (train mode, its default attention
  implementation) on PyTorch, ``torch.optim.AdamW``, the model's own cross-entropy loss, backward,
  ``clip_grad_norm_(1.0)``, step; ``torch.set_num_threads(2)``; same warm-up and median.

MFU = achieved FLOP/s / measured MindSpore float32 matmul peak (best of 5), with one matmul FLOP
count for both sides. Each measurement runs in a fresh process, one after another, and reports
how many cores other processes used meanwhile (only runs with about 0 background are worth
pasting; PyTorch in particular slows down several-fold when another process takes a core)::

    python benchmarks/bench_finetune_step.py                    # about 80 s on 2 quiet cores
    python benchmarks/bench_finetune_step.py --loss-scale on --no-standard-ops --steps 5
    python benchmarks/bench_finetune_step.py --profile          # per-operator profile, about 60 s
    python benchmarks/bench_finetune_step.py --nezha --loss-scale on    # the same as NEZHA on both sides
    python benchmarks/bench_finetune_step.py --profile --hidden-act gelu_tanh   # what-if: another activation

Prints a Markdown table (pasted into BENCHMARKS.md) and, with ``--json PATH``, writes the raw
numbers. ``--profile`` instead runs our step (loss scale on) under ``mindspore.Profiler`` and
prints milliseconds per step by operator type, forward and backward kernels alike (the backward
of an operator is its own type, e.g. ``LayerNormGrad``), then each fused kernel (type ``Custom``
in that table) alone at the same shapes, forward and backward.
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

from benchmarks.common import (machine_line, print_profile, profile_forward_backward,  # noqa: E402
                               profile_steps, spawn, time_hf_steps, time_steps, worker_peak)
from src.runtime import write_json  # noqa: E402

BATCH = 32
SEQ = 64
LABELS = 2
LEARNING_RATE = 2e-5
WEIGHT_DECAY = 0.01
FINETUNE_LOSS_SCALE = 2.0 ** 32


def make_batch(batch: int = BATCH, seq: int = SEQ, seed: int = 0) -> dict:
    """A random classification batch as numpy arrays; ~10% padding, two segments, labels in {0, 1}."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(int(seq * 0.8), seq + 1, size=batch)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(1000, 30522, size=(batch, seq)).astype(np.int32) * mask
    ids[:, 0] = 101  # [CLS]
    segments = ((np.arange(seq)[None, :] >= (lengths // 2)[:, None]) & (mask == 1)).astype(np.int32)
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments,
            "label_ids": rng.integers(0, LABELS, size=(batch,)).astype(np.int32)}


def flops_per_sequence(config) -> float:
    """Matmul FLOPs of one forward+backward pass (3x forward) of one sequence: encoder, pooler, classifier."""
    from run_pretrain import training_flops_per_sequence

    h = config.hidden_size
    return training_flops_per_sequence(config, SEQ, 0) + 3.0 * (2 * h * h + 2 * h * LABELS)


def minilm_dir() -> Path:
    from src.sample_data import fetch

    return fetch("minilm")


# --------------------------------------------------------------------------------------
# Workers (each runs in its own process)
# --------------------------------------------------------------------------------------
NEZHA_K = 64
NEZHA = {"use_relative_positions": True, "max_relative_position": NEZHA_K}


def worker_ours(steps: int, warmup: int, loss_scale: bool, hidden_act: str | None, profile: bool = False,
                nezha: bool = False) -> dict:
    """Time our train step; with ``profile``, then run ``steps`` more under ``mindspore.Profiler``."""
    import mindspore as ms

    from src.checkpoint import load_checkpoint_into
    from src.config import AdamWeightDecayConfig, OptimizerConfig, bert_config_from_hf
    from src.optimization import build_optimizer
    from src.training import BertClassificationLoss, TrainStep

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ms.set_seed(0)
    overrides = {"seq_length": SEQ} if hidden_act is None else {"seq_length": SEQ, "hidden_act": hidden_act}
    config = bert_config_from_hf(minilm_dir(), **overrides, **(NEZHA if nezha else {}))
    network = BertClassificationLoss(config, num_labels=LABELS)
    load_checkpoint_into(network, minilm_dir())
    network.set_train(True)
    optimizer_config = OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(
        learning_rate=LEARNING_RATE, warmup_steps=0, power=1.0, weight_decay=WEIGHT_DECAY, bias_correction=True))
    optimizer = build_optimizer(optimizer_config, network.trainable_params(), 1000)
    step = TrainStep(network, optimizer, loss_scale=FINETUNE_LOSS_SCALE if loss_scale else None, clip_norm=1.0)
    batch = make_batch()
    tensors = [ms.Tensor(batch[k]) for k in ("input_ids", "input_mask", "segment_ids", "label_ids")]

    def run() -> tuple[float, float, bool]:
        start = time.perf_counter()
        loss, _, overflow, _, _ = step(*tensors)
        value = float(loss.asnumpy())
        return time.perf_counter() - start, value, bool(overflow.asnumpy())

    result, results = time_steps(run, steps, warmup, "compile_and_first_step_s")
    result.update(overflow_steps=sum(o for *_, o in results), hidden_act=config.hidden_act,
                  flops_per_sequence=flops_per_sequence(config))
    if profile:
        result.update(profile_steps(run, steps))
    return result


def weighted_sum(cell, shape):
    """A cell computing sum(cell(*xs) * w) for a fixed random w: its gradient runs the backward kernel
    on a dense cotangent."""
    import mindspore as ms
    import numpy as np
    from mindspore import nn

    class WeightedSum(nn.Cell):
        def __init__(self):
            super().__init__()
            self.inner = cell
            self.weight = ms.Tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32))

        def construct(self, *xs):
            return (self.inner(*xs) * self.weight).sum()

    return WeightedSum()


def worker_kernels(steps: int, warmup: int) -> dict:
    """Each fused kernel of ``src/fused_ops.py`` alone, at this benchmark's shapes, forward and backward
    under ``mindspore.Profiler`` (the step's profile shows them all as one ``Custom`` type)."""
    import math

    import mindspore as ms
    import numpy as np
    from mindspore import Tensor

    from src.config import bert_config_from_hf
    from src.training import BertClassificationLoss
    try:
        from src import fused_ops
    except ImportError:  # a checkout from before the fused kernels
        return {"kernels": []}

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    if fused_ops.kernel_library() is None:
        return {"kernels": []}
    config = bert_config_from_hf(minilm_dir(), seq_length=SEQ)
    b, s, h, i = BATCH, SEQ, config.hidden_size, config.intermediate_size
    layers, heads, p, eps = config.num_hidden_layers, config.num_attention_heads, config.hidden_dropout_prob, 1e-12
    cases = [  # name, cell, input shapes, calls per train step
        ("SelfAttention (QKV bias, softmax, dropout, P V)",
         fused_ops.SelfAttention(heads, p, 1 / math.sqrt(h // heads)), [(b, s, 3 * h), (3 * h,), (b, 1, 1, s)], layers),
        ("DropoutAddLayerNorm", fused_ops.DropoutAddLayerNorm(p, eps), [(b, s, h), (h,), (b, s, h), (h,), (h,)],
         2 * layers),
        ("BiasGelu", fused_ops.BiasGelu(), [(b, s, i), (i,)], layers),
        ("LayerNormDropout (embeddings)", fused_ops.LayerNormDropout(p, eps), [(b, s, h), (h,), (h,)], 1),
    ]
    rng = np.random.default_rng(0)
    rows = []
    for name, cell, shapes, calls in cases:
        cell.set_train(True)
        inputs = [Tensor(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
        fn = ms.jit(ms.value_and_grad(weighted_sum(cell, cell(*inputs).shape), tuple(range(len(inputs)))))

        def run(fn=fn, inputs=inputs):
            fn(*inputs)[0].asnumpy()

        for _ in range(warmup + 1):
            run()
        forward, backward = profile_forward_backward(run, steps, "Custom")
        rows.append({"kernel": name, "calls_per_step": calls, "forward_ms": forward, "backward_ms": backward})
    weights = BertClassificationLoss(config, num_labels=LABELS).trainable_params()
    grads = tuple(Tensor(rng.standard_normal(w.shape).astype(np.float32)) for w in weights)
    norm = ms.jit(fused_ops.SumOfSquares([w.dtype for w in weights]))
    norm(grads).asnumpy()
    forward, _ = profile_forward_backward(lambda: norm(grads).asnumpy(), steps, "Custom")
    rows.append({"kernel": f"SumOfSquares (global gradient norm, {len(weights)} tensors)", "calls_per_step": 1,
                 "forward_ms": forward, "backward_ms": 0.0})
    return {"kernels": rows}


def worker_hf(steps: int, warmup: int, threads: int, nezha: bool = False) -> dict:
    os.environ.setdefault("USE_TF", "0")
    import torch
    import transformers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=LABELS)
    if nezha:  # the same weights in NezhaForSequenceClassification (no position table; relative K = 64)
        bert = model
        model = transformers.NezhaForSequenceClassification(transformers.NezhaConfig(
            **{k: v for k, v in bert.config.to_dict().items() if k in transformers.NezhaConfig().to_dict()},
            max_relative_position=NEZHA_K))
        state = {k.replace("bert.", "nezha.", 1): v for k, v in bert.state_dict().items()
                 if "position_embeddings" not in k and "position_ids" not in k}
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all("relative_positions" in k for k in missing), (missing, unexpected)
    model.train()
    assert model.config.hidden_act == "gelu" and model.config.hidden_dropout_prob == 0.1
    decay = [p for n, p in model.named_parameters() if not ("LayerNorm" in n or n.endswith("bias"))]
    no_decay = [p for n, p in model.named_parameters() if "LayerNorm" in n or n.endswith("bias")]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=LEARNING_RATE)
    batch = make_batch()
    inputs = dict(input_ids=torch.from_numpy(batch["input_ids"]).long(),
                  attention_mask=torch.from_numpy(batch["input_mask"]).long(),
                  token_type_ids=torch.from_numpy(batch["segment_ids"]).long(),
                  labels=torch.from_numpy(batch["label_ids"]).long())

    # HF's loss: cross-entropy over the 2 labels
    return time_hf_steps(model, optimizer, inputs, steps, warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first (compiling) one")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--loss-scale", choices=("on", "off", "both"), default="both",
                        help=f"our dynamic loss scale (initial {FINETUNE_LOSS_SCALE:.0f}) on, off, or both measured")
    parser.add_argument("--no-standard-ops", action="store_true",
                        help="skip the row of our step with the fused CPU kernels off (BERT_ZOO_FUSED_KERNELS=0)")
    parser.add_argument("--hidden-act", help="our side only: replace the checkpoint's activation (a what-if)")
    parser.add_argument("--nezha", action="store_true",
                        help="both sides NEZHA of MiniLM's shape and weights (functional relative positions, "
                             f"K = {NEZHA_K}, no position table; HF NezhaForSequenceClassification)")
    parser.add_argument("--peak-seconds", type=float, default=1.0)
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the comparison: profile our step (loss scale on) with mindspore.Profiler "
                             "and print milliseconds per step by operator type")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "peak":
            result = worker_peak(args.peak_seconds)
        elif kind == "kernels":
            result = worker_kernels(args.steps, args.warmup)
        elif kind in ("ours", "profile"):
            result = worker_ours(args.steps, args.warmup, loss_scale=rest[0] == "on", hidden_act=args.hidden_act,
                                 profile=kind == "profile", nezha=args.nezha)
        else:
            result = worker_hf(args.steps, args.warmup, args.threads, nezha=args.nezha)
        print(json.dumps(result))
        return 0

    minilm_dir()  # fetch once here, not in a timed worker
    start = time.perf_counter()
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
              "--peak-seconds", str(args.peak_seconds)]
    if args.hidden_act:
        common += ["--hidden-act", args.hidden_act]
    if args.nezha:
        common.append("--nezha")
    act = (args.hidden_act or "gelu (exact erf)") + (f"; NEZHA, relative positions K = {NEZHA_K}" if args.nezha else "")
    if args.profile:
        result = spawn(__file__, ["profile", "on", *common])
        print_profile(f"MiniLM classifier ({act}), batch {BATCH}, seq {SEQ}, loss scale on", result, args.steps)
        kernels = spawn(__file__, ["kernels", *common])
        if kernels["kernels"]:
            print(f"\nThe fused kernels (op type Custom above), each alone at these shapes (other processes used "
                  f"{kernels['background_cores']:.2f} cores):\n")
            print("| kernel | calls / step | forward ms / call | backward ms / call | ms / step |\n"
                  "| --- | --- | --- | --- | --- |")
            for r in kernels["kernels"]:
                total = r["calls_per_step"] * (r["forward_ms"] + r["backward_ms"])
                backward = f"{r['backward_ms']:.2f}" if r["backward_ms"] else "-"
                print(f"| {r['kernel']} | {r['calls_per_step']} | {r['forward_ms']:.2f} | {backward} | {total:.1f} |")
        if args.json:
            write_json(args.json, {"step": result, "kernels": kernels})
        return 0

    scales = ["on", "off"] if args.loss_scale == "both" else [args.loss_scale]
    peak = spawn(__file__, ["peak", *common])["peak_tflops"]
    ours = {scale: spawn(__file__, ["ours", scale, *common]) for scale in scales}
    standard = None
    if not args.no_standard_ops:
        standard = spawn(__file__, ["ours", scales[0], *common], env={"BERT_ZOO_FUSED_KERNELS": "0"})
    hf = spawn(__file__, ["hf", *common])
    elapsed = time.perf_counter() - start
    flops = next(iter(ours.values()))["flops_per_sequence"]
    rows = []
    for scale, result in ours.items():
        rows.append({"side": f"ours, TrainStep, loss scale {scale}", "result": result})
        print(f"ours (loss scale {scale}): {result['median_s']:.3f} s/step (compile+first "
              f"{result['compile_and_first_step_s']:.1f} s, loss {result['first_loss']:.3f}->"
              f"{result['last_loss']:.3f}, "
              f"overflow {result['overflow_steps']}); other processes used {result['background_cores']:.2f} cores",
              file=sys.stderr, flush=True)
    if standard is not None:
        rows.append({"side": f"ours, standard MindSpore operators (BERT_ZOO_FUSED_KERNELS=0), loss scale {scales[0]}",
                     "result": standard})
        print(f"ours with standard operators: {standard['median_s']:.3f} s/step; other processes used "
              f"{standard['background_cores']:.2f} cores", file=sys.stderr, flush=True)
    hf_class = "NezhaForSequenceClassification" if args.nezha else "BertForSequenceClassification"
    rows.append({"side": f"HuggingFace {hf_class} ({hf['attn_implementation']} attention)",
                 "result": hf})
    print(f"HF: {hf['median_s']:.3f} s/step (loss {hf['first_loss']:.3f}->{hf['last_loss']:.3f}); other processes "
          f"used {hf['background_cores']:.2f} cores", file=sys.stderr, flush=True)
    for row in rows:
        row["samples_per_s"] = BATCH / row["result"]["median_s"]
        row["mfu"] = row["samples_per_s"] * flops / (peak * 1e12)
        row["vs_hf"] = row["samples_per_s"] / (BATCH / hf["median_s"])
    background = max(r["result"]["background_cores"] for r in rows)

    print(f"{machine_line(hf, args.threads)}; MiniLM classifier ({act}), batch {BATCH}, seq {SEQ}, float32, "
          f"dropout 0.1, clip 1.0, AdamW; median of {args.steps} steps after {args.warmup} warm-up steps; "
          f"{flops / 1e9:.2f} GFLOP per sequence; MindSpore fp32 matmul peak (best of 5) {peak * 1e3:.0f} GFLOP/s; "
          f"{elapsed:.0f} s in all; other processes used up to {background:.2f} cores during a measurement\n")
    print("| train step | ms / step | samples/s | vs HF | MFU |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['side']} | {r['result']['median_s'] * 1e3:.0f} | {r['samples_per_s']:.1f} | "
              f"{r['vs_hf']:.2f}x | {r['mfu']:.1%} |")
    if args.json:
        write_json(args.json, {"peak_tflops": peak, "flops_per_sequence": flops, "rows": rows, "seconds": elapsed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
