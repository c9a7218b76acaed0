"""CRF speed: this project's ``src.crf.CRF`` (MindSpore, GRAPH mode) against pytorch-crf 0.7.2 on the same inputs.

Both sides get the same random batch (default batch 32, seq 128, tags 7 and 21, float32): standard
normal emissions, random gold tags, prefix masks of random length in [seq/2, seq] with the first
position on (pytorch-crf accepts nothing else; ours costs the same on any mask), and the same
parameters (pytorch-crf's uniform ±0.1 draw, ``CRF(num_tags, seed=0)``). Three operations:

* ``nll``: the per-sequence negative log-likelihood [B] (forward algorithm + gold score);
* ``nll+grad``: the mean NLL and its gradients w.r.t. emissions and the three parameters
  (ours: ``ms.value_and_grad`` under ``ms.jit``; pytorch-crf: ``loss.backward()``);
* ``decode``: Viterbi paths (ours: int32 [B, S] from the graph; pytorch-crf: lists, its
  back-tracking is a host loop).

Ours is compiled once (the first call, reported as "compile s"), then ``--warmup`` untimed calls,
then the median of ``--steps`` calls, each synchronised with ``.asnumpy()``; pytorch-crf the same
with ``torch.set_num_threads(--threads)``. Each side runs in a fresh process, one after another,
and reports how many cores other processes used meanwhile (only runs with about 0 background are
worth pasting). The script checks that both sides give the same NLL and the same paths::

    .venv/bin/python benchmarks/bench_crf.py                      # about 2 minutes on 2 quiet cores
    .venv/bin/python benchmarks/bench_crf.py --batch 8 --seq 256 --tags 9 --steps 10

Prints a Markdown table and one JSON line (``speedup`` = pytorch-crf time / our time).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_model, spawn, version  # noqa: E402

OPERATIONS = ("nll", "nll+grad", "decode")


def make_inputs(batch: int, seq: int, num_tags: int, seed: int = 0) -> dict:
    """Emissions float32 [B, S, T], tags int32 [B, S], prefix mask bool [B, S], and the parameters
    CRF(num_tags, seed=0) draws (start, end, transitions, uniform ±0.1 from RandomState(0))."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(seq // 2, seq + 1, size=batch)
    lengths[0] = seq
    init = np.random.RandomState(0)
    return {"emissions": rng.standard_normal((batch, seq, num_tags)).astype(np.float32),
            "tags": rng.integers(0, num_tags, size=(batch, seq)).astype(np.int32),
            "mask": np.arange(seq)[None, :] < lengths[:, None],
            "start_transitions": init.uniform(-0.1, 0.1, num_tags).astype(np.float32),
            "end_transitions": init.uniform(-0.1, 0.1, num_tags).astype(np.float32),
            "transitions": init.uniform(-0.1, 0.1, (num_tags, num_tags)).astype(np.float32)}


def timed(run, steps: int, warmup: int) -> tuple[float, float, object]:
    """(first call s, median s of ``steps`` calls after ``warmup``, the last result)."""
    start = time.perf_counter()
    result = run()
    first = time.perf_counter() - start
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), result


def worker_ours(inputs: dict, steps: int, warmup: int) -> dict:
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn

    from src.crf import CRF

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    crf = CRF(inputs["emissions"].shape[2], seed=0)
    for name in ("start_transitions", "end_transitions", "transitions"):
        assert np.array_equal(getattr(crf, name).asnumpy(), inputs[name]), name
    emissions, tags, mask = Tensor(inputs["emissions"]), Tensor(inputs["tags"]), Tensor(inputs["mask"])

    class Decode(nn.Cell):
        def __init__(self):
            super().__init__()
            self.crf = crf

        def construct(self, e, m):
            return self.crf.decode(e, m)

    def mean_nll(e, y, m):
        return crf(e, y, m).mean()

    train = ms.jit(ms.value_and_grad(mean_nll, grad_position=0, weights=crf.trainable_params()))
    decode = Decode()

    def run_train():
        loss, (d_emissions, d_params) = train(emissions, tags, mask)
        d_emissions.asnumpy()
        return float(loss.asnumpy())

    runs = {"nll": lambda: crf(emissions, tags, mask).asnumpy(),
            "nll+grad": run_train,
            "decode": lambda: decode(emissions, mask).asnumpy()}
    result = {}
    for op, run in runs.items():
        result[op] = dict(zip(("first_s", "median_s"), timed(run, steps, warmup)[:2]))
        result[op]["output"] = run()
    result["nll"]["output"] = result["nll"]["output"].tolist()
    result["decode"]["output"] = [row[m].tolist() for row, m in zip(result["decode"]["output"], inputs["mask"])]
    return result


def worker_torch(inputs: dict, steps: int, warmup: int, threads: int) -> dict:
    import torch
    import torchcrf

    torch.set_num_threads(threads)
    crf = torchcrf.CRF(inputs["emissions"].shape[2], batch_first=True)
    with torch.no_grad():
        for name in ("start_transitions", "end_transitions", "transitions"):
            getattr(crf, name).copy_(torch.from_numpy(inputs[name]))
    emissions = torch.from_numpy(inputs["emissions"])
    tags = torch.from_numpy(inputs["tags"]).long()
    mask = torch.from_numpy(inputs["mask"])

    def run_nll():
        with torch.no_grad():
            return -crf(emissions, tags, mask, reduction="none")

    def run_train():
        crf.zero_grad(set_to_none=True)
        leaf = emissions.clone().requires_grad_(True)
        loss = -crf(leaf, tags, mask, reduction="mean")
        loss.backward()
        return loss.item()

    def run_decode():
        with torch.no_grad():
            return crf.decode(emissions, mask)

    result = {"torch": torch.__version__, "pytorch_crf": version("pytorch-crf"), "threads": torch.get_num_threads()}
    for op, run in (("nll", run_nll), ("nll+grad", run_train), ("decode", run_decode)):
        result[op] = dict(zip(("first_s", "median_s"), timed(run, steps, warmup)[:2]))
        result[op]["output"] = run()
    result["nll"]["output"] = result["nll"]["output"].tolist()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--tags", type=int, nargs="+", default=[7, 21], help="numbers of tags, one run each")
    parser.add_argument("--steps", type=int, default=20, help="timed calls (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls after the first (compiling) one")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        side, num_tags = args.worker[0], int(args.worker[1])
        inputs = make_inputs(args.batch, args.seq, num_tags)
        if side == "ours":
            result = worker_ours(inputs, args.steps, args.warmup)
        else:
            result = worker_torch(inputs, args.steps, args.warmup, args.threads)
        print(json.dumps(result))
        return 0

    import numpy as np

    common = ["--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--threads", str(args.threads)]
    rows, torch_result = [], {}
    for num_tags in args.tags:
        ours = spawn(__file__, ["ours", str(num_tags), *common])
        torch_result = spawn(__file__, ["torch", str(num_tags), *common])
        np.testing.assert_allclose(ours["nll"]["output"], torch_result["nll"]["output"], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(ours["nll+grad"]["output"], torch_result["nll+grad"]["output"], rtol=1e-5)
        assert ours["decode"]["output"] == torch_result["decode"]["output"], f"T={num_tags}: Viterbi paths differ"
        for op in OPERATIONS:
            rows.append({"num_tags": num_tags, "operation": op, "ours_ms": ours[op]["median_s"] * 1e3,
                         "pytorch_crf_ms": torch_result[op]["median_s"] * 1e3,
                         "speedup": torch_result[op]["median_s"] / ours[op]["median_s"],
                         "ours_compile_s": ours[op]["first_s"],
                         "background_cores": max(ours["background_cores"], torch_result["background_cores"])})

    print(f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"MindSpore {version('mindspore')} (GRAPH), PyTorch {torch_result['torch']} ({args.threads} threads), "
          f"pytorch-crf {torch_result['pytorch_crf']}; batch {args.batch}, seq {args.seq}, float32, median of {args.steps}; "
          f"outputs checked equal\n")
    print("| tags | operation | ours ms | pytorch-crf ms | speed-up | our compile + first call s | background cores |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['num_tags']} | {r['operation']} | {r['ours_ms']:.1f} | {r['pytorch_crf_ms']:.1f} | "
              f"{r['speedup']:.2f}x | {r['ours_compile_s']:.1f} | {r['background_cores']:.2f} |")
    print(json.dumps({"benchmark": "crf", "batch": args.batch, "seq": args.seq, "steps": args.steps, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
