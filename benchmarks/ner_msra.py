"""NER on real data against HuggingFace: MSRA Chinese NER with this project's small Chinese BERT.

The model is configs/bert_zh_small.yaml (2 layers, H=128) pretrained by
``bash benchmarks/pretrain_zh_small.sh`` (People's Daily 1998-01 + Chinese fortunes, 3,000 steps),
or from random initialisation. Records: ``tools/create_ner_data.py --task msra --max_seq_length
128`` (50,289 training sentences, BMES read and converted to IOB2; scored on the 5,000 test
sentences, entity-level micro F1 equal to seqeval's default mode). Per seed, head (CRF, softmax)
and initialisation, ours (``run_ner.py --config configs/ner_msra.yaml``, GRAPH mode) and then
HuggingFace (transformers 4.46.3 ``BertForTokenClassification`` from the same checkpoint
converted with ``tools/convert_checkpoint.py --to huggingface``, + ``pytorch-crf`` for the CRF;
``benchmarks/hf_ner.py``) run in fresh processes one after the other, on the SAME token ids and
label masks, with the same hyperparameters (the config: bias-corrected AdamW on both sides, lr
2e-3, 10% warmup then linear decay, weight decay 0.01 off LayerNorm and biases, batch 32 with the
last partial batch dropped, 1 epoch, dropout 0.1, clip 1.0) and the final weights scored once (MSRA
has no dev split, so no checkpoint is picked on the test set)::

    bash benchmarks/pretrain_zh_small.sh                    # once: the pretrained checkpoint (20 min)
    .venv/bin/python benchmarks/ner_msra.py                 # 3 seeds x 2 heads x (pretrained, random) + HF: ~70 min
    .venv/bin/python benchmarks/ner_msra.py --seeds 1 --inits pretrained --epochs 0.2   # a quick look

A run whose ``all_results.json`` (ours) or ``hf_results.json`` exists under the same epochs and
config text is not run again, so an interrupted benchmark continues where it stopped (after a new
pretraining, give another ``--workdir``). Reported per run: test entity F1 (micro, and
per type), training samples/s over the whole loop (ours includes graph compilation) and in
steady state, and the cores other processes used meanwhile. Prints a Markdown table and, with
``--json PATH``, writes the raw numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import run_measured, train_hf  # noqa: E402

CONFIG = ROOT / "configs" / "ner_msra.yaml"
PRETRAINED = ROOT / "output" / "pretrain_zh_small" / "pretrain" / "checkpoints" / "pretrain-00003000.ckpt"
TYPES = ("LOC", "ORG", "PER")


def prepare(work: Path, pretrained: Path, hf: bool) -> tuple[Path, Path]:
    """The MSRA records and (``hf``) the pretrained checkpoint converted to HuggingFace (made once, then reused)."""
    from src.sample_data import fetch

    records = work / "records"
    if not (records / "dataset.json").exists():
        subprocess.run([sys.executable, str(ROOT / "tools" / "create_ner_data.py"), "--task", "msra",
                        "--vocab_file", str(fetch("vocab_zh")), "--max_seq_length", "128", "--output_dir",
                        str(records), "--progress", "false"], check=True)
    hf_dir = work / "hf_pretrained"
    if hf and not (hf_dir / "config.json").exists():
        subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "--to", "huggingface",
                        "--input", str(pretrained), "--config", "bert_zh_small", "--output", str(hf_dir)],
                       check=True)
    return records, hf_dir


def ours(seed: int, head: str, pretrained: Path | None, records: Path, out: Path, epochs: float,
         extra: list[str]) -> dict:
    if not (out / "all_results.json").exists():
        cmd = [sys.executable, str(ROOT / "run_ner.py"), "--config", str(CONFIG), "--data_dir", str(records),
               "--output_dir", str(out), f"--seed={seed}", f"--epochs={epochs}",
               f"--use_crf={str(head == 'crf').lower()}", "--eval_every=1000000000", "--progress=false",
               "--keep_checkpoint_max=1", *extra]
        if pretrained:
            cmd.append(f"--init_checkpoint={pretrained}")
        wall, background = run_measured(cmd, ROOT)
        (out / "measured.json").write_text(json.dumps({"wall_s": wall, "background_cores": background}))
    results = json.loads((out / "all_results.json").read_text())
    windows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    windows = [w for w in windows if w["event"] == "train"]
    steady = windows[1:] or windows
    return {"f1": results["test_f1"], "precision": results["test_precision"], "recall": results["test_recall"],
            **{f"{t}_f1": results[f"test_{t}_f1"] for t in TYPES},
            "samples_per_second": results["train_samples_per_second"],
            "steady_samples_per_second": statistics.median(w["samples_per_second"] for w in steady),
            **json.loads((out / "measured.json").read_text())}


def hf(seed: int, head: str, hf_dir: Path | None, records: Path, out: Path, epochs: float) -> dict:
    path = out / "hf_results.json"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--hf-worker", "--seed", str(seed), "--head", head, "--records",
               str(records), "--epochs", str(epochs), "--out", str(path)]
        if hf_dir:
            cmd += ["--hf-dir", str(hf_dir)]
        wall, background = run_measured(cmd, ROOT)
        data = json.loads(path.read_text())
        data.update(wall_s=wall, background_cores=background)
        path.write_text(json.dumps(data, indent=2) + "\n")
    return json.loads(path.read_text())


def hf_worker(seed: int, head: str, hf_dir: str, records: Path, epochs: float, out: Path) -> None:
    """HuggingFace fine-tuning and scoring on the records' token ids (runs in its own process)."""
    os.environ.setdefault("USE_TF", "0")
    import numpy as np
    import torch
    import transformers

    from benchmarks.hf_ner import HFTagger
    from src import ner_metrics
    from src.config import NerConfig, bert_config_to_hf, parse_config
    from src.data.ner_data import merge_windows, read_sentence_index
    from src.data.records import read_batches

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    config = parse_config(NerConfig, ["--config", str(CONFIG)])
    info = json.loads((records / "dataset.json").read_text())
    labels = info["labels"]

    def load(split: str) -> dict:
        batch = next(read_batches(records / info["splits"][split]["file"], batch_size=10 ** 7))
        return {k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in batch.items()}

    train, test = load("train"), load("test")
    dropout = dict(hidden_dropout_prob=config.model.hidden_dropout_prob,
                   attention_probs_dropout_prob=config.model.attention_probs_dropout_prob)
    if hf_dir:
        bert = transformers.BertForTokenClassification.from_pretrained(hf_dir, num_labels=len(labels), **dropout)
    else:
        hf_config = transformers.BertConfig(**{**bert_config_to_hf(config.model), **dropout, "num_labels": len(labels)})
        bert = transformers.BertForTokenClassification(hf_config)
    model = HFTagger(bert, len(labels), head == "crf")
    def batch_loss(idx):
        return model(train["input_ids"][idx], train["input_mask"][idx], train["segment_ids"][idx],
                     train["label_ids"][idx], train["label_mask"][idx])

    trained = train_hf(model, batch_loss, len(train["input_ids"]), config, epochs, seed)
    rows = []
    for b in range(0, len(test["input_ids"]), config.eval_batch_size):
        sl = slice(b, b + config.eval_batch_size)
        tags = model.decode(test["input_ids"][sl], test["input_mask"][sl], test["segment_ids"][sl],
                            test["label_mask"][sl])
        mask = test["label_mask"][sl].bool()
        rows.extend(tags[i][mask[i]].numpy() for i in range(len(tags)))
    index = read_sentence_index(records / info["splits"]["test"]["sentences_file"])
    predicted = [[labels[i] for i in ids] for ids in merge_windows(index, rows)]
    scores = ner_metrics.entity_scores([e["tags"] for e in index], predicted)
    result = {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
              **{f"{t}_f1": scores["per_type"][t]["f1"] for t in TYPES}, **trained}
    out.write_text(json.dumps(result, indent=2) + "\n")


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--heads", nargs="+", choices=("crf", "softmax"), default=["crf", "softmax"])
    parser.add_argument("--inits", nargs="+", choices=("pretrained", "random"), default=["pretrained", "random"])
    parser.add_argument("--sides", nargs="+", choices=("ours", "hf"), default=["ours", "hf"],
                        help="HF runs only from the pretrained checkpoint")
    parser.add_argument("--epochs", type=float, default=None, help="default: the config's epochs")
    parser.add_argument("--pretrained", default=str(PRETRAINED), help="the pretrained checkpoint")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "ner_msra"))
    parser.add_argument("--json", default="", help="write the raw numbers here")
    parser.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--head", default="crf", help=argparse.SUPPRESS)
    parser.add_argument("--hf-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--records", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("extra", nargs="*", help="more run_ner.py options for our side, after -- (e.g. NEZHA: "
                        "--model.use_relative_positions=true)")
    args = parser.parse_args(argv)
    if args.hf_worker:
        hf_worker(args.seed, args.head, args.hf_dir, Path(args.records), args.epochs, Path(args.out))
        return 0

    from src.config import NerConfig, parse_config

    epochs = args.epochs or parse_config(NerConfig, ["--config", str(CONFIG)]).epochs
    pretrained = Path(args.pretrained)
    if "pretrained" in args.inits and not pretrained.exists():
        print(f"error: {pretrained} does not exist: run bash benchmarks/pretrain_zh_small.sh first", file=sys.stderr)
        return 1
    # results are reused only for the same config text and epochs (a new pretrained checkpoint wants a new --workdir)
    settings = CONFIG.read_bytes() + " ".join(args.extra).encode()
    work = Path(args.workdir) / f"epochs{epochs:g}-config{hashlib.sha256(settings).hexdigest()[:8]}"
    work.mkdir(parents=True, exist_ok=True)
    records, hf_dir = prepare(work, pretrained, "hf" in args.sides)
    runs = []
    for seed in args.seeds:
        for init in args.inits:
            for head in args.heads:
                for side in args.sides:
                    if side == "hf" and init == "random":
                        continue
                    out = work / f"{side}-{init}-{head}-seed{seed}"
                    if side == "ours":
                        result = ours(seed, head, pretrained if init == "pretrained" else None, records, out, epochs,
                                      args.extra)
                    else:
                        result = hf(seed, head, hf_dir if init == "pretrained" else None, records, out, epochs)
                    runs.append({"seed": seed, "init": init, "head": head, "side": side, **result})
                    print(json.dumps(runs[-1]), flush=True)

    info = json.loads((records / "dataset.json").read_text())
    print(f"\nMSRA NER: {info['splits']['train']['sentences']:,} training / {info['splits']['test']['sentences']:,} "
          f"test sentences, bert_zh_small (2 layers, H=128{', ' + ' '.join(args.extra) if args.extra else ''}), "
          f"seq 128, batch 32, {epochs:g} epochs, seeds "
          f"{', '.join(map(str, args.seeds))}; test entity F1 (mean ± std over seeds, %)\n")
    print("| model | head | init | F1 | precision | recall | " + " | ".join(f"{t} F1" for t in TYPES)
          + " | samples/s | steady samples/s | background cores |")
    print("| --- " * (9 + len(TYPES)) + "|")
    groups: dict = {}
    for run in runs:
        groups.setdefault((run["side"], run["head"], run["init"]), []).append(run)
    summary = {}
    for (side, head, init), group in groups.items():
        summary[f"{side}-{head}-{init}"] = {k: statistics.mean(r[k] for r in group) for k in
                                            ("f1", "samples_per_second", "steady_samples_per_second")}
        cells = [_mean_std([r[k] for r in group]) for k in ("f1", "precision", "recall", *(f"{t}_f1" for t in TYPES))]
        speed = [f"{statistics.mean(r[k] for r in group):.0f}" for k in ("samples_per_second",
                                                                         "steady_samples_per_second")]
        background = f"{max(r['background_cores'] for r in group):.2f}"
        name = "ours (run_ner.py)" if side == "ours" else "HF BertForTokenClassification"
        print(f"| {name} | {head} | {init} | " + " | ".join(cells + speed + [background]) + " |")
    for head in args.heads:
        a, b = summary.get(f"ours-{head}-pretrained"), summary.get(f"hf-{head}-pretrained")
        if a and b:
            print(f"\n{head}: mean F1 ours - HF {100 * (a['f1'] - b['f1']):+.2f} points; training samples/s ours / HF "
                  f"{a['samples_per_second'] / b['samples_per_second']:.2f}x (steady state "
                  f"{a['steady_samples_per_second'] / b['steady_samples_per_second']:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps({"epochs": epochs, "runs": runs, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
