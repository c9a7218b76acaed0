"""Does this project's pretraining learn as fast as the reference? The same run with HuggingFace.

Takes a finished ``run_pretrain.py`` output directory (its ``config.yaml``, ``metrics.jsonl`` and
``eval_results.json``) and trains the same architecture with HuggingFace transformers on PyTorch
from a fresh initialisation, on the same training records, for the same number of steps, with the
same hyperparameters: batch size, AdamWeightDecay as in Google's BERT and MindSpore (no bias
correction, decoupled weight decay off LayerNorm and biases), the warmup + polynomial-decay
learning rate (``src.optimization.learning_rate_at``), global-norm clipping, dropout, MLM logits at
the masked positions only (HF's ``BertForPreTraining`` modules applied to the gathered positions),
the zoo's loss ``Σw·CE / (Σw + 1e-5) + NSP CE``. Then both are scored the same way on the held-out
records and on 30 batches of training records::

    bash scripts/quickstart.sh
    .venv/bin/python benchmarks/pretrain_learning_vs_hf.py --run output/quickstart/pretrain   # 12 min measured, cores shared

Prints the training losses of both at every logged step and a table of the final metrics. The
initialisations and data orders differ (different frameworks and random streams), so read the
curves for their shape and level, not for equality. MindSpore and PyTorch never share a process:
the records are read here and handed to a PyTorch worker as a NumPy file.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ("input_ids", "input_mask", "segment_ids", "next_sentence_labels", "masked_lm_positions", "masked_lm_ids",
           "masked_lm_weights")
TRAIN_SAMPLE_BATCHES = 30


def load_records(directory: str) -> dict:
    """Every row of the record shards in ``directory`` as arrays [N, ...] (files in name order)."""
    from src.data.dataset import find_record_files
    from src.data.records import read_batches

    parts: dict = {c: [] for c in COLUMNS}
    for path in find_record_files(directory):
        for batch in read_batches(path, COLUMNS):
            for c in COLUMNS:
                parts[c].append(np.asarray(batch[c]))
    return {c: np.concatenate(parts[c]) for c in COLUMNS}


# --------------------------------------------------------------------------------------
# PyTorch worker
# --------------------------------------------------------------------------------------
def worker(config: dict, data_file: str, output: str, seed: int) -> None:
    os.environ.setdefault("USE_TF", "0")
    import torch
    import transformers

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    data = np.load(data_file)
    train = {c: torch.from_numpy(data[f"train_{c}"].astype(np.int64 if c != "masked_lm_weights" else np.float32))
             for c in COLUMNS}
    held_out = {c: torch.from_numpy(data[f"eval_{c}"].astype(np.int64 if c != "masked_lm_weights" else np.float32))
                for c in COLUMNS}
    m = config["model"]
    model = transformers.BertForPreTraining(transformers.BertConfig(
        vocab_size=m["vocab_size"], hidden_size=m["hidden_size"], num_hidden_layers=m["num_hidden_layers"],
        num_attention_heads=m["num_attention_heads"], intermediate_size=m["intermediate_size"],
        hidden_act=m["hidden_act"], hidden_dropout_prob=m["hidden_dropout_prob"],
        attention_probs_dropout_prob=m["attention_probs_dropout_prob"],
        max_position_embeddings=m["max_position_embeddings"], type_vocab_size=m["type_vocab_size"],
        initializer_range=m["initializer_range"], layer_norm_eps=m["layer_norm_eps"]))
    opt = config["optimizer"][config["optimizer"]["optimizer"]]
    if config["optimizer"]["optimizer"] != "adamw":
        raise SystemExit("error: this comparison implements AdamWeightDecay only (optimizer.optimizer: adamw)")
    steps, batch_size, log_every = config["train_steps"], config["batch_size"], config["log_every"]
    decay_steps = opt["decay_steps"] or steps
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decayed = {n for n, _ in params if "layernorm" not in n.lower() and "bias" not in n.lower()}
    moments = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params}

    def losses(batch: dict):
        out = model.bert(input_ids=batch["input_ids"], attention_mask=batch["input_mask"],
                         token_type_ids=batch["segment_ids"])
        positions = batch["masked_lm_positions"].unsqueeze(-1).expand(-1, -1, m["hidden_size"])
        mlm_logits = model.cls.predictions(torch.gather(out.last_hidden_state, 1, positions))  # (B, P, V)
        nsp_logits = model.cls.seq_relationship(out.pooler_output)  # (B, 2)
        ce = torch.nn.functional.cross_entropy(mlm_logits.transpose(1, 2), batch["masked_lm_ids"], reduction="none")
        w = batch["masked_lm_weights"]
        mlm = (ce * w).sum() / (w.sum() + 1e-5)
        nsp = torch.nn.functional.cross_entropy(nsp_logits, batch["next_sentence_labels"].view(-1))
        return mlm, nsp, mlm_logits, nsp_logits, ce

    rng = np.random.default_rng(seed)
    n = len(train["input_ids"])
    per_epoch = n // batch_size
    records, window = [], {"mlm": 0.0, "nsp": 0.0, "n": 0}
    order = rng.permutation(n)
    model.train()
    for step in range(1, steps + 1):
        index = (step - 1) % per_epoch
        if index == 0 and step > 1:
            order = rng.permutation(n)
        rows = torch.from_numpy(order[index * batch_size:(index + 1) * batch_size])
        mlm, nsp, *_ = losses({c: v[rows] for c, v in train.items()})
        model.zero_grad(set_to_none=True)
        (mlm + nsp).backward()
        if config["clip_norm"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config["clip_norm"])
        t = step - 1  # updates applied before this one; src.optimization.learning_rate_at, without MindSpore
        lr = opt["learning_rate"] * t / opt["warmup_steps"] if t < opt["warmup_steps"] else \
            (opt["learning_rate"] - opt["end_learning_rate"]) * (1 - min(t, decay_steps) / decay_steps) ** opt["power"] \
            + opt["end_learning_rate"]
        with torch.no_grad():  # AdamWeightDecay (Google BERT / MindSpore): no bias correction
            for name, p in params:
                m1, m2 = moments[name]
                m1.mul_(opt["beta1"]).add_(p.grad, alpha=1 - opt["beta1"])
                m2.mul_(opt["beta2"]).addcmul_(p.grad, p.grad, value=1 - opt["beta2"])
                update = m1 / (m2.sqrt() + opt["eps"])
                if name in decayed:
                    update = update + opt["weight_decay"] * p
                p.sub_(lr * update)
        window["mlm"] += mlm.item()
        window["nsp"] += nsp.item()
        window["n"] += 1
        if step % log_every == 0 or step == steps:
            records.append({"step": step, "mlm_loss": window["mlm"] / window["n"],
                            "nsp_loss": window["nsp"] / window["n"]})
            print(f"HuggingFace step {step}/{steps}: MLM loss {records[-1]['mlm_loss']:.4f} "
                  f"NSP loss {records[-1]['nsp_loss']:.4f}", file=sys.stderr, flush=True)
            window = {"mlm": 0.0, "nsp": 0.0, "n": 0}

    def evaluate(split: dict, max_batches: int = 0) -> dict:
        model.eval()
        correct = total = nsp_correct = sequences = 0
        nll = 0.0
        with torch.no_grad():
            for start in range(0, len(split["input_ids"]), batch_size):
                if max_batches and start // batch_size >= max_batches:
                    break
                batch = {c: v[start:start + batch_size] for c, v in split.items()}
                _, _, mlm_logits, nsp_logits, ce = losses(batch)
                w = batch["masked_lm_weights"] > 0
                correct += int(((mlm_logits.argmax(-1) == batch["masked_lm_ids"]) & w).sum())
                total += int(w.sum())
                nll += float(ce[w].double().sum())
                nsp_correct += int((nsp_logits.argmax(-1) == batch["next_sentence_labels"].view(-1)).sum())
                sequences += len(batch["input_ids"])
        return {"mlm_accuracy": correct / total, "mlm_perplexity": float(np.exp(min(nll / total, 700.0))),
                "nsp_accuracy": nsp_correct / sequences, "sequences": sequences}

    shuffled = torch.from_numpy(rng.permutation(n))  # one order for every column
    train_order = {c: v[shuffled] for c, v in train.items()}
    result = {"train": records, "held_out": evaluate(held_out),
              "train_sample": evaluate(train_order, TRAIN_SAMPLE_BATCHES),
              "torch": torch.__version__, "transformers": transformers.__version__}
    Path(output).write_text(json.dumps(result, indent=1), encoding="utf-8")


def plot_curves(ours: list, hf: list, path: Path) -> None:
    """MLM and NSP training loss of both runs against the optimizer step, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, title in ((axes[0], "mlm_loss", "MLM loss"), (axes[1], "nsp_loss", "NSP loss")):
        for rows, label in ((ours, "this project (MindSpore)"), (hf, "HuggingFace BertForPreTraining (PyTorch)")):
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=label)
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[1].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=str(ROOT / "output" / "quickstart" / "pretrain"),
                        help="a finished run_pretrain.py output directory (with --eval_data_dir)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="", help="write both runs' numbers here")
    parser.add_argument("--plot", default="", help="write the two runs' MLM and NSP training losses as a PNG here")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import yaml

    run = Path(args.run)
    missing = [f for f in ("config.yaml", "metrics.jsonl", "eval_results.json") if not (run / f).exists()]
    if missing:
        print(f"error: {run} has no {', '.join(missing)}: run run_pretrain.py (with --eval_data_dir) to the end "
              f"first, e.g. bash scripts/quickstart.sh", file=sys.stderr)
        return 1
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    if args.worker:
        worker(config, args.worker[0], args.worker[1], int(args.worker[2]))
        return 0
    if not config.get("eval_data_dir"):
        print(f"error: {run / 'config.yaml'} has no eval_data_dir", file=sys.stderr)
        return 1
    ours_train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ours_train = {r["step"]: r for r in ours_train if r.get("event") == "train"}
    ours = json.loads((run / "eval_results.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        data_file, out_file = Path(tmp) / "records.npz", Path(tmp) / "hf.json"
        train, held_out = load_records(config["data_dir"]), load_records(config["eval_data_dir"])
        np.savez(data_file, **{f"train_{c}": v for c, v in train.items()},
                 **{f"eval_{c}": v for c, v in held_out.items()})
        subprocess.run([sys.executable, __file__, "--run", str(run), "--worker", str(data_file), str(out_file),
                        str(args.seed)], check=True, cwd=ROOT)
        hf = json.loads(out_file.read_text())
    m = config["model"]
    print(f"\n{run}: H={m['hidden_size']}, {m['num_hidden_layers']} layers, seq {m['seq_length']}, "
          f"{config['train_steps']} steps of batch {config['batch_size']}, {config['optimizer']['optimizer']} "
          f"lr {config['optimizer'][config['optimizer']['optimizer']]['learning_rate']}; HuggingFace transformers "
          f"{hf['transformers']} on PyTorch {hf['torch']}\n")
    print("| step | ours MLM loss | HF MLM loss | ours NSP loss | HF NSP loss |\n| --- | --- | --- | --- | --- |")
    for r in hf["train"]:
        o = ours_train.get(r["step"])
        if o:
            print(f"| {r['step']} | {o['mlm_loss']:.3f} | {r['mlm_loss']:.3f} | {o['nsp_loss']:.3f} | {r['nsp_loss']:.3f} |")
    print("\n| records | metric | ours | HF |\n| --- | --- | --- | --- |")
    for name, ours_side, hf_side in (("held-out", ours, hf["held_out"]),
                                     ("training sample", ours.get("train_sample"), hf["train_sample"])):
        if not ours_side:
            continue
        for key in ("mlm_accuracy", "mlm_perplexity", "nsp_accuracy"):
            print(f"| {name} | {key} | {ours_side[key]:.4f} | {hf_side[key]:.4f} |")
    print(f"\nunigram baseline (held-out) {ours['unigram_accuracy']:.4f}, NSP majority class {ours['nsp_majority']:.4f}")
    if args.plot:
        plot_curves(sorted(ours_train.values(), key=lambda r: r["step"]), hf["train"], Path(args.plot))
    if args.json:
        Path(args.json).write_text(json.dumps({"ours": {"train": list(ours_train.values()), "eval": ours}, "hf": hf},
                                              indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
