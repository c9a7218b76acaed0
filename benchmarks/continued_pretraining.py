"""Continued pretraining from a converted checkpoint against training the same model from scratch.

The real all-MiniLM-L6-v2 checkpoint (HF, no MLM/NSP heads) is converted with
tools/convert_checkpoint.py; the same architecture (configs/minilm_l6.yaml) is pretrained on the
Wikipedia sample for the same number of steps, once from those weights (--init_checkpoint) and once
from a random initialisation, and both are evaluated on held-out Wikipedia records::

    bash scripts/quickstart.sh                       # makes output/quickstart/data/{train,eval}
    .venv/bin/python benchmarks/continued_pretraining.py --steps 100

Prints a Markdown table of held-out MLM perplexity and accuracy, and writes both runs' outputs
(metrics.jsonl, loss_curve.png, eval_results.json) under --workdir.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT / "output" / "quickstart" / "data"),
                        help="directory with train/ and eval/ records made with the uncased vocab")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "continued_pretraining"))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    from src.sample_data import fetch

    work = Path(args.workdir)
    data = Path(args.data)
    for split in ("train", "eval"):
        if not (data / split).is_dir():
            print(f"error: {data / split} does not exist: run bash scripts/quickstart.sh first", file=sys.stderr)
            return 1
    summary = next((data / "train").glob("*-summary.json"))
    seq_length = json.loads(summary.read_text())["config"]["max_seq_length"]
    converted = work / "minilm.ckpt"
    if not converted.exists():
        subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "--input", str(fetch("minilm")),
                        "--output", str(converted)], check=True)
    common = ["--model", "minilm_l6", f"--model.seq_length={seq_length}", "--optimizer.optimizer=adamw", "--optimizer.adamw.learning_rate=1e-4",
              "--optimizer.adamw.warmup_steps=10", "--optimizer.adamw.power=1.0", f"--train_steps={args.steps}",
              f"--batch_size={args.batch_size}", f"--data_dir={data / 'train'}", f"--eval_data_dir={data / 'eval'}",
              "--log_every=10", "--save_checkpoint_steps=1000000", "--progress=false", "--resume=false"]
    results = {}
    for name, extra in (("from scratch", []), ("continued from MiniLM", [f"--init_checkpoint={converted}"])):
        out = work / name.split()[0]
        subprocess.run([sys.executable, str(ROOT / "run_pretrain.py"), *common, *extra, f"--output_dir={out}"],
                       check=True)
        results[name] = json.loads((out / "eval_results.json").read_text())
    print(f"\nMiniLM-L6 architecture (H=384, 6 layers), {args.steps} steps of batch {args.batch_size}, seq {seq_length}, "
          f"AdamWeightDecay lr 1e-4; held-out Wikipedia records\n")
    print("| run | held-out MLM perplexity | MLM accuracy | NSP accuracy |\n| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['mlm_perplexity']:.1f} | {r['mlm_accuracy']:.4f} | {r['nsp_accuracy']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
