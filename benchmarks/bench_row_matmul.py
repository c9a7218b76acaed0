"""The encoder's projections alone: MindSpore's MatMul against ``RowMatMul`` (oneDNN's sgemm, and only
the rows of real tokens), forward + backward, at the shapes of a batch of 32 rows of 128 positions.

    .venv/bin/python benchmarks/bench_row_matmul.py            # about 30 seconds

``real`` is the share of rows that hold a real token: 100% (pretraining records are full), 73% (the
NER step benchmark), 35% (MSRA sentences). MatMul computes every row whatever the share. Median of
20 calls of value-and-gradient of the output's sum after 3 warm-up calls, GRAPH mode (the times
include that harness: the sum, its gradient and the returned gradients, the same on both sides).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHAPES = (("QKV, H=128", 128, 384), ("feed-forward in, H=128", 128, 512), ("feed-forward out, H=128", 512, 128),
          ("QKV, H=384 (MiniLM)", 384, 1152), ("feed-forward in, H=384", 384, 1536))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)

    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn, ops

    from benchmarks.common import busy_seconds, cpu_model
    from src import fused_ops

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    if fused_ops.gemm_library() is None:
        print("error: the fused kernels were built without oneDNN's sgemm", file=sys.stderr)
        return 1

    class Standard(nn.Cell):
        def __init__(self):
            super().__init__()
            self.matmul = ops.MatMul(transpose_b=True)

        def construct(self, x, w, rows):
            return self.matmul(x, w)

    class Sum(nn.Cell):
        def __init__(self, cell):
            super().__init__()
            self.cell = cell

        def construct(self, x, w, rows):
            return self.cell(x, w, rows).sum()

    def timed(cell, x, w, rows) -> float:
        run = ms.jit(ms.value_and_grad(Sum(cell), (0, 1)))
        for _ in range(3):
            run(x, w, rows)[0].asnumpy()
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            run(x, w, rows)[0].asnumpy()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    rng = np.random.default_rng(0)
    own = resource.getrusage(resource.RUSAGE_SELF)
    busy, wall = busy_seconds(), time.perf_counter()
    rows_total = 32 * 128
    print(f"{cpu_model()}, MindSpore {ms.__version__}, GRAPH; {rows_total} rows (batch 32 x seq 128); "
          f"median of {args.calls} value-and-gradient calls\n")
    print("| projection | K -> N | real rows | MatMul ms | RowMatMul ms | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, k, n in SHAPES:
        x = Tensor(rng.standard_normal((rows_total, k)).astype(np.float32))
        w = Tensor(rng.standard_normal((n, k)).astype(np.float32))
        for share in (1.0, 0.73, 0.35):
            lengths = np.full(32, round(128 * share))
            rows = Tensor((np.arange(128)[None, :] < lengths[:, None]).reshape(-1).astype(np.int32))
            standard = timed(Standard(), x, w, rows)
            fused = timed(fused_ops.RowMatMul(), x, w, rows)
            print(f"| {name} | {k} -> {n} | {share:.0%} | {standard * 1e3:.2f} | {fused * 1e3:.2f} | "
                  f"{standard / fused:.2f}x |", flush=True)
    seconds = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    mine = (after.ru_utime - own.ru_utime) + (after.ru_stime - own.ru_stime)
    print(f"\nother processes used {max(0.0, (busy_seconds() - busy - mine) / seconds):.2f} cores on average; "
          f"{seconds:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
