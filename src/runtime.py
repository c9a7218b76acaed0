"""What the run_* entry points share: device setup, FLOP counting and the measured matmul peak
(for MFU), atomic JSON output and the loss-curve plot."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Sequence


def setup_devices(mode: str, device_target: str, device_id: int = 0, distribute: bool = False) -> tuple[int, int]:
    """Execution mode (``graph``/``pynative``), device and (if distributed) communication;
    returns (rank, group size)."""
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE, device_target=device_target)
    if device_target != "CPU" and not distribute:
        ms.set_context(device_id=device_id)
    if not distribute:
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank, size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size)
    return rank, size


def training_flops_per_sequence(model, seq_length: int, predictions: int) -> float:
    """Matmul FLOPs of one forward+backward pass (3x forward) of one sequence of an encoder with
    an MLM head at ``predictions`` positions (0 for a classifier, whose head is negligible)."""
    h, i, layers = model.hidden_size, model.intermediate_size, model.num_hidden_layers
    per_token_layer = 2 * (4 * h * h + 2 * h * i)  # q, k, v, output projections and the feed-forward
    attention = 2 * 2 * seq_length * h  # QK^T and PV per token
    head = 2 * h * h + 2 * h * model.vocab_size  # MLM transform and decoder, per predicted position
    forward = seq_length * layers * (per_token_layer + attention) + predictions * head
    return 3.0 * forward


def measure_matmul_peak(seconds: float = 1.0) -> float:
    """Measured float32 matmul throughput of this device in TFLOP/s (4096x1024 @ 1024x1024): the better
    of MindSpore's MatMul and, on CPU with the fused kernels, the sgemm the encoder's projections use
    (``RowMatMul``), so that MFU stays below 100%."""
    import mindspore as ms
    import numpy as np

    from .fused_ops import RowMatMul, gemm_library

    a = ms.Tensor(np.random.rand(4096, 1024).astype(np.float32))
    b = ms.Tensor(np.random.rand(1024, 1024).astype(np.float32))
    rows = ms.Tensor(np.ones(4096, np.int32))

    @ms.jit
    def matmul(x, y):
        return ms.ops.matmul(x, y)

    candidates = [lambda: matmul(a, b)]
    if ms.get_context("device_target") == "CPU" and gemm_library() is not None:
        row_matmul = RowMatMul()
        candidates.append(lambda: row_matmul(a, b, rows))  # a @ b.T: the same FLOPs
    best = 0.0
    for run in candidates:
        run().asnumpy()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            run().asnumpy()
            count += 1
        best = max(best, count * 2 * 4096 * 1024 * 1024 / (time.perf_counter() - start) / 1e12)
    return best


def _strict(value):
    """NaN and infinities (e.g. the Pearson correlation of constant predictions) become null:
    strict JSON has no literal for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented strict JSON (NaN -> null) under a temporary name, then rename;
    the folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_strict(data), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(_strict(record)) + "\n")


def plot_loss_curve(metrics_file: Path, output: Path, keys: Sequence[tuple[str, str]]) -> None:
    """Plot the ``train`` records of a metrics.jsonl file: one line per (key, label) that has a
    non-zero value somewhere; written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("event") == "train"]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for key, label in keys:
        if any(r.get(key) for r in rows):
            ax.plot(steps, [r.get(key) for r in rows], label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, output)
