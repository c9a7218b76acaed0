"""Helpers shared by the train-step benchmarks (``bench_pretrain_step.py``, ``bench_finetune_step.py``).

* :func:`spawn`: run a benchmark script as a worker in a fresh process and measure how many
  cores other processes used meanwhile (PyTorch's step slows down several-fold when another
  process takes a core, so every table says how quiet the machine was).
* :func:`worker_peak`: the measured MindSpore float32 matmul peak, the denominator of MFU.
* :func:`profile_steps`, :func:`print_profile`: a step under ``mindspore.Profiler`` (it works on
  CPU), milliseconds per step by operator type.
* :func:`machine_line`: CPU model, cores, Python and package versions for the table's header.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    import psutil

    t = psutil.cpu_times()
    return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))


def run_measured(cmd: list[str], cwd: str | os.PathLike | None = None) -> tuple[float, float]:
    """Run ``cmd`` in the foreground; returns (wall seconds, cores other processes used meanwhile)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, start = busy_seconds(), time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, env=dict(os.environ, GLOG_v="3", USE_TF="0"))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return wall, max(0.0, (busy_seconds() - busy - own) / wall)


def time_steps(run: Callable[[], tuple], steps: int, warmup: int,
               first_key: str = "first_step_s") -> tuple[dict, list[tuple]]:
    """Calls ``run`` (-> ``(seconds, loss, ...)``) once, ``warmup`` times untimed, then ``steps``
    times; returns ``{first_key, step_s, median_s, first_loss, last_loss}`` and the timed results."""
    import statistics

    first = run()
    for _ in range(warmup):
        run()
    results = [run() for _ in range(steps)]
    times = [r[0] for r in results]
    return ({first_key: first[0], "step_s": times, "median_s": statistics.median(times), "first_loss": first[1],
             "last_loss": results[-1][1]}, results)


def time_hf_steps(model, optimizer, inputs: dict, steps: int, warmup: int) -> dict:
    """Times HuggingFace training steps on one batch (``model(**inputs).loss``, backward, clipping at
    1.0, ``optimizer.step``) with :func:`time_steps`."""
    import torch
    import transformers

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        value = loss.item()
        return time.perf_counter() - start, value

    timing, _ = time_steps(run, steps, warmup)
    return {**timing, "attn_implementation": model.config._attn_implementation, "torch": torch.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads()}


def train_hf(model, batch_loss: Callable, n: int, config, epochs: float, seed: int, log_every: int = 0,
             batches: Optional[Sequence] = None) -> dict:
    """The HuggingFace side's fine-tuning loop, shared by the real-data benchmarks: ``torch.optim.AdamW``
    with the config's ``optimizer.adamw`` settings (weight decay off biases and LayerNorm weights),
    linear warmup (``warmup_proportion``) then linear decay, batches of ``config.batch_size`` drawn
    from a ``seed`` permutation of the ``n`` training rows per epoch (last partial batch dropped),
    global-norm clipping at ``config.clip_norm``.

    Args:
        batch_loss: row indices (a LongTensor) -> the scalar loss of that batch.
        batches: the row indices of every step (LongTensors), replayed instead of the seeded
            permutation (e.g. the batches the MindSpore run read, in its order).

    Returns:
        ``samples_per_second`` (over the timed steps), ``steady_samples_per_second`` (median after
        step 10), ``train_loss`` (mean) and ``train_steps``.
    """
    import math
    import statistics

    import torch
    import transformers

    settings = config.optimizer.adamw
    no_decay = ("bias", "LayerNorm.weight")
    optimizer = torch.optim.AdamW(
        [{"params": [p for name, p in model.named_parameters() if not name.endswith(no_decay)],
          "weight_decay": settings.weight_decay},
         {"params": [p for name, p in model.named_parameters() if name.endswith(no_decay)], "weight_decay": 0.0}],
        lr=settings.learning_rate, betas=(settings.beta1, settings.beta2), eps=settings.eps)
    batch_size = config.batch_size
    per_epoch = n // batch_size
    total = max(1, math.ceil(epochs * per_epoch))
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, int(total * config.warmup_proportion), total)
    if batches is not None and len(batches) < total:
        raise ValueError(f"{len(batches)} batches to replay but {total} steps to train")
    generator = torch.Generator().manual_seed(seed)
    model.train()
    step, seconds, losses, steady = 0, 0.0, [], []
    while step < total:
        order = torch.randperm(n, generator=generator)
        for b in range(per_epoch):
            if step >= total:
                break
            idx = order[b * batch_size:(b + 1) * batch_size] if batches is None else batches[step]
            tick = time.perf_counter()
            loss = batch_loss(idx)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            elapsed = time.perf_counter() - tick
            seconds += elapsed
            step += 1
            losses.append(float(loss.detach()))
            if step > 10:
                steady.append(batch_size / elapsed)
            if log_every and step % log_every == 0:
                print(f"hf step {step}/{total} loss {statistics.mean(losses[-log_every:]):.4f} "
                      f"{step * batch_size / seconds:.1f} samples/s", flush=True)
    model.eval()
    return {"samples_per_second": step * batch_size / seconds,
            "steady_samples_per_second": statistics.median(steady) if steady else step * batch_size / seconds,
            "train_loss": sum(losses) / len(losses), "train_steps": step}


def spawn(script: str | os.PathLike, args: list[str], env: dict | None = None) -> dict:
    """Run ``script --worker ARGS`` in a fresh process (``env``: extra environment variables); its
    last stdout line is JSON.

    Adds ``background_cores``: CPU time used by every other process on the machine during the
    worker's run, divided by its wall time (0 on a quiet machine; 1 means a whole core was taken).
    """
    import resource

    env = dict(os.environ, GLOG_v="3", USE_TF="0", TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, start = busy_seconds(), time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), "--worker", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if proc.returncode:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["background_cores"] = max(0.0, (busy_seconds() - busy - ours) / wall)
    return result


def worker_peak(seconds: float) -> dict:
    """``peak_tflops``: the best of 5 float32 matmul measurements (4096x1024 @ 1024x1024, GRAPH mode);
    a ceiling, and the least sensitive to other processes and clock changes."""
    import mindspore as ms

    from run_pretrain import measure_matmul_peak

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    return {"peak_tflops": max(measure_matmul_peak(seconds) for _ in range(5))}


def _profiled(run: Callable[[], object], steps: int) -> tuple[list[dict], list[dict], float]:
    """Run ``steps`` calls of ``run`` under ``mindspore.Profiler``: rows of its per-type and per-operator
    CSV files, and the wall time per call."""
    import mindspore as ms

    with tempfile.TemporaryDirectory() as out:
        profiler = ms.Profiler(output_path=out)
        start = time.perf_counter()
        for _ in range(steps):
            run()
        wall = (time.perf_counter() - start) / steps
        profiler.analyse()
        tables = []
        for name in ("cpu_op_type_info_0.csv", "cpu_op_detail_info_0.csv"):
            files = sorted(Path(out).rglob(name))
            if not files:
                raise RuntimeError(f"mindspore.Profiler wrote no {name} under {out}")
            with open(files[0], newline="", encoding="utf-8") as f:
                tables.append(list(csv.DictReader(f)))
    return tables[0], tables[1], wall


def profile_steps(run: Callable[[], object], steps: int) -> dict:
    """Run ``steps`` calls of ``run`` under ``mindspore.Profiler``.

    Returns ``profile``, a list of ``{op_type, calls_per_step, ms_per_step}`` sorted by time
    (forward and backward kernels alike: the backward of an operator is its own op type, e.g.
    ``LayerNormGrad``), ``operators``, the same for each operator of the graph (``{name, ms_per_step}``,
    its full name: ``Gradients/...`` for the backward pass, ``Custom-opN`` numbered in graph order),
    and ``profiled_step_s``, the wall time per step under the profiler.
    """
    rows, detail, wall = _profiled(run, steps)
    ops = [{"op_type": r["op_type"], "calls_per_step": int(r["type_occurrences"]) // steps,
            "ms_per_step": float(r["total_compute_time"]) / steps} for r in rows]
    ops.sort(key=lambda r: -r["ms_per_step"])
    operators = [{"name": r["full_op_name"], "ms_per_step": float(r["op_total_time(ms)"]) / steps} for r in detail]
    operators.sort(key=lambda r: -r["ms_per_step"])
    return {"profile": ops, "operators": operators, "profiled_step_s": wall}


def profile_forward_backward(run: Callable[[], object], steps: int, op_type: str) -> tuple[float, float]:
    """Milliseconds per call of ``run`` spent in ``op_type`` operators of the forward graph and of the
    gradient graph (``Gradients/...`` scopes), under ``mindspore.Profiler``."""
    _, rows, _ = _profiled(run, steps)
    forward = backward = 0.0
    for r in rows:
        if r["op_type"] == op_type:
            ms_total = float(r["op_total_time(ms)"]) / steps
            if r["full_op_name"].startswith("Gradients/"):
                backward += ms_total
            else:
                forward += ms_total
    return forward, backward


def print_profile(title: str, result: dict, steps: int, top: int = 16, operators: int = 0) -> None:
    """Print ``profile_steps``'s table under a line naming ``title``, the step times and the background load;
    with ``operators``, also that many of the slowest single operators."""
    ops = result["profile"]
    total = sum(r["ms_per_step"] for r in ops)
    print(f"{title}: step {result['median_s'] * 1e3:.0f} ms unprofiled (median of {steps}), "
          f"{result['profiled_step_s'] * 1e3:.0f} ms under the profiler, of which operators "
          f"{total:.0f} ms; other processes used {result['background_cores']:.2f} cores\n")
    print("| operator type | calls / step | ms / step | share of operator time |\n| --- | --- | --- | --- |")
    for r in ops[:top]:
        print(f"| {r['op_type']} | {r['calls_per_step']} | {r['ms_per_step']:.1f} | {r['ms_per_step'] / total:.1%} |")
    rest = ops[top:]
    print(f"| {len(rest)} other types | {sum(r['calls_per_step'] for r in rest)} | "
          f"{sum(r['ms_per_step'] for r in rest):.1f} | {sum(r['ms_per_step'] for r in rest) / total:.1%} |")
    if operators:
        print(f"\nThe {operators} slowest operators (full names; Custom-opN numbered in graph order):\n\n"
              "| operator | ms / step |\n| --- | --- |")
        for r in result["operators"][:operators]:
            print(f"| {r['name']} | {r['ms_per_step']:.2f} |")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def version(package: str) -> str:
    from importlib.metadata import version as _version

    return _version(package)


def machine_line(hf: dict | None, threads: int) -> str:
    """``CPU (arch), N cores, Python, MindSpore (GRAPH), PyTorch (threads), transformers`` for a table header;
    ``hf`` is a HuggingFace worker's result (it carries the torch and transformers versions)."""
    hf = hf or {}
    return (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"MindSpore {version('mindspore')} (GRAPH), PyTorch {hf.get('torch', '?')} ({threads} threads), "
            f"transformers {hf.get('transformers', '?')}")
