"""SQuAD v1.1 on real data against HuggingFace: all-MiniLM-L6-v2 fine-tuned on a subset of the
official training set and scored on the full dev set (10,570 questions).

Records: ``tools/create_squad_data.py --task squad_v1 --max_train_questions N`` (by default 6,400
questions drawn uniformly with seed 12345 from the 87,599 of train-v1.1.json, one epoch: what
lets HuggingFace's side train in under an hour on 2 CPU cores; max_seq_length 384, doc_stride
128, max_query_length 64). Per seed, ours (``run_squad.py --config configs/squad_v1.yaml``, GRAPH
mode) and then HuggingFace (transformers ``BertForQuestionAnswering`` from the same checkpoint,
PyTorch on 2 threads) train in fresh processes one after the other on the SAME windows (token
ids, masks and start/end positions read from our records), with the same hyperparameters (the
config: bias-corrected AdamW lr 1e-4, weight decay 0.01 off LayerNorm and biases, 10% warmup then
linear decay, batch 32 with the last partial batch dropped, dropout 0.1, clip 1.0). HF
computes its own loss (cross-entropy over all 384 positions; ours leaves the padding out), or with
``--hf-loss masked`` this project's. The final weights are scored once.

Unpaired, each side draws its own span-head weights and batch order from the seed, and at this
budget (202 steps) those alone move the score by several points. ``--paired`` takes them out of
the comparison: a MindSpore process rebuilds our seed-N run's start (src.finetune.initial_network:
the run's own seeding and checkpoint loading) and reads its shuffled training batches with their
``unique_ids``; HuggingFace then starts from those span-head weights and trains on those rows in
that order, so that only dropout, the loss over padding and floating-point arithmetic differ.

Evaluation end to end is timed for each side in a fresh process from the dev JSON to the scores:
ours = ``tools/create_squad_data.py --predict_file dev-v1.1.json`` then ``run_squad.py --do_train
false``; HF = the same feature code (src.data.squad_data) in-process, the model's forward in
batches of 64 under ``torch.no_grad``, then the same postprocessing (src.squad_postprocess) and
the official v1.1 arithmetic (src.squad_metrics)::

    .venv/bin/python benchmarks/squad_minilm.py                        # 1 seed, about 90 min
    .venv/bin/python benchmarks/squad_minilm.py --train-questions 320 --epochs 1 --dev-articles 2   # a quick look
    .venv/bin/python benchmarks/squad_minilm.py --sides ours --v2-style   # + the SQuAD 2.0-style set, 15 min more
    .venv/bin/python benchmarks/squad_minilm.py --sides hf --hf-loss masked   # HF with our masked span loss
    .venv/bin/python benchmarks/squad_minilm.py --seeds 1 2 --paired   # HF replays our start and batches

A run whose results exist under the same settings is not run again, so an interrupted benchmark
continues where it stopped. Prints a Markdown table and, with ``--json PATH``, the raw numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import run_measured, train_hf  # noqa: E402

CONFIG = ROOT / "configs" / "squad_v1.yaml"
TOOL = ROOT / "tools" / "create_squad_data.py"


def prepare(work: Path, train_questions: int, dev_articles: int) -> tuple[Path, Path, Path]:
    """The converted checkpoint, the records (train subset + dev) and the dev file (made once)."""
    from src.sample_data import fetch

    minilm = fetch("minilm")
    converted = work / "minilm.ckpt"
    if not converted.exists():
        subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "--input", str(minilm),
                        "--output", str(converted)], check=True)
    squad = fetch("squad_v1")
    dev = squad / "dev-v1.1.json"
    if dev_articles:
        dev = work / f"dev-v1.1-first{dev_articles}.json"
        if not dev.exists():
            data = json.loads((squad / "dev-v1.1.json").read_text(encoding="utf-8"))
            dev.write_text(json.dumps({"version": "1.1", "data": data["data"][:dev_articles]}), encoding="utf-8")
    records = work / "records"
    if not (records / "dataset.json").exists():
        subprocess.run([sys.executable, str(TOOL), "--train_file", str(squad / "train-v1.1.json"), "--predict_file",
                        str(dev), "--max_train_questions", str(train_questions), "--vocab_file",
                        str(minilm / "vocab.txt"), "--output_dir", str(records), "--progress", "false"], check=True)
    return converted, records, dev


def ours_args(seed: int, converted: Path, records: Path, out: Path, epochs: float) -> list[str]:
    """run_squad.py's options for our training run."""
    return ["--config", str(CONFIG), "--data_dir", str(records), "--output_dir", str(out), "--init_checkpoint",
            str(converted), f"--seed={seed}", f"--epochs={epochs}", "--eval_every=1000000000", "--progress=false",
            "--keep_checkpoint_max=1"]


def ours(seed: int, converted: Path, records: Path, dev: Path, out: Path, epochs: float) -> dict:
    from src.sample_data import fetch

    if not (out / "all_results.json").exists():
        cmd = [sys.executable, str(ROOT / "run_squad.py"), *ours_args(seed, converted, records, out, epochs)]
        wall, background = run_measured(cmd, ROOT)
        (out / "measured.json").write_text(json.dumps({"wall_s": wall, "background_cores": background}))
    if not (out / "eval" / "all_results.json").exists():
        eval_records = out / "eval_records"
        subprocess.run(["rm", "-rf", str(eval_records)], check=True)
        vocab = fetch("minilm") / "vocab.txt"
        features_s, bg1 = run_measured([sys.executable, str(TOOL), "--predict_file", str(dev), "--vocab_file",
                                        str(vocab), "--output_dir", str(eval_records), "--progress", "false"], ROOT)
        model_s, bg2 = run_measured([sys.executable, str(ROOT / "run_squad.py"), "--config", str(CONFIG),
                                     "--data_dir", str(eval_records), "--output_dir", str(out / "eval"),
                                     "--init_checkpoint", str(out / "best_model.ckpt"), "--do_train=false",
                                     "--progress=false"], ROOT)
        (out / "eval_measured.json").write_text(json.dumps({
            "eval_features_s": features_s, "eval_model_s": model_s, "eval_wall_s": features_s + model_s,
            "eval_background_cores": max(bg1, bg2)}))
    results = json.loads((out / "all_results.json").read_text())
    again = json.loads((out / "eval" / "all_results.json").read_text())
    windows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    windows = [w for w in windows if w["event"] == "train"]
    steady = windows[1:] or windows
    return {"exact_match": results["dev_exact_match"], "f1": results["dev_f1"],
            "eval_again_f1": again["dev_f1"], "questions": results["dev_examples"],
            "samples_per_second": results["train_samples_per_second"],
            "steady_samples_per_second": statistics.median(w["samples_per_second"] for w in steady),
            "train_loss": results["train_loss"], "train_steps": results["train_steps"],
            **json.loads((out / "measured.json").read_text()),
            **json.loads((out / "eval_measured.json").read_text())}


def v2_style(work: Path, out: Path) -> dict:
    """Our trained model on the SQuAD 2.0-style set built from v1.1 dev (tools/create_squad_data.py
    --task squad_v1_unanswerable), scored as v2.0 at the default threshold (0.0) and at the best
    F1 threshold from the null odds (predictions recomputed from nbest + null odds, no new run)."""
    from src.data.squad_records import gold_dataset, read_split_index
    from src.sample_data import fetch
    from src.squad_metrics import evaluate_v2

    records = work / "v2style_records"
    if not (records / "dataset.json").exists():
        subprocess.run([sys.executable, str(TOOL), "--task", "squad_v1_unanswerable", "--vocab_file",
                        str(fetch("minilm") / "vocab.txt"), "--output_dir", str(records), "--progress", "false"],
                       check=True)
    run = out / "v2style"
    if not (run / "all_results.json").exists():
        subprocess.run([sys.executable, str(ROOT / "run_squad.py"), "--config", str(CONFIG), "--data_dir",
                        str(records), "--output_dir", str(run), "--init_checkpoint", str(out / "best_model.ckpt"),
                        "--do_train=false", "--version_2_with_negative=true", "--progress=false"], check=True,
                       env=dict(os.environ, GLOG_v="3"))
    results = json.loads((run / "all_results.json").read_text())
    info = json.loads((records / "dataset.json").read_text())
    examples, _ = read_split_index(records, info["splits"]["dev"])
    nbest = json.loads((run / "nbest_predictions_dev.json").read_text(encoding="utf-8"))
    null_odds = json.loads((run / "null_odds_dev.json").read_text())
    threshold = results["dev_best_f1_thresh"]
    predictions = {q: ("" if null_odds[q] > threshold else next((n["text"] for n in entries if n["text"]), ""))
                   for q, entries in nbest.items()}
    at_best = evaluate_v2(gold_dataset(examples), predictions, null_odds)
    return {"questions": info["splits"]["dev"]["questions"], "unanswerable": info["splits"]["dev"]["impossible"],
            "default": {k[4:]: v for k, v in results.items() if k.startswith("dev_")},
            "best_threshold": threshold, "at_best": at_best}


def paired_start(seed: int, converted: Path, records: Path, epochs: float, work: Path) -> Path:
    """``work/paired-seedN-epochsE.npz``: our run's span-head initial weights and batch order (made once)."""
    path = work / f"paired-seed{seed}-epochs{epochs:g}.npz"
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--paired-worker", "--seed", str(seed), "--records", str(records),
                        "--checkpoint", str(converted), "--epochs", str(epochs), "--out", str(path)], check=True,
                       cwd=ROOT, env=dict(os.environ, GLOG_v="3"))
    return path


def paired_worker(seed: int, converted: Path, records: Path, epochs: float, path: Path) -> None:
    """What our seed-``seed`` run starts from, for HuggingFace to replay (MindSpore, own process):
    the span head's weights after src.finetune.initial_network (the run's own seeding and
    checkpoint loading) and the file rows of every training batch in the order the run reads
    them (its shuffled dataset, read again with ``unique_ids``; the batches are checked equal)."""
    import math

    import numpy as np

    from src.config import SquadConfig, parse_config
    from src.data.records import read_batches
    from src.finetune import initial_network
    from src.squad import SquadTask

    config = parse_config(SquadConfig, ours_args(seed, converted, records, path.parent / "unused", epochs))
    task = SquadTask(config.data_dir, config)
    network = initial_network(config, task)
    head = {p.name.rsplit(".", 1)[-1]: p.asnumpy() for p in network.trainable_params()
            if p.name.split(".")[-2:-1] == ["qa_outputs"]}
    ids = next(read_batches(task.file(config.train_split), ["unique_ids"], batch_size=10 ** 9))["unique_ids"][:, 0]
    row = {int(u): i for i, u in enumerate(ids)}
    order, epoch = [], 0
    per_epoch = task.train_dataset(config, 0, validate=False).get_dataset_size()
    total = math.ceil(epochs * per_epoch)
    while len(order) < total:
        plain = task.train_dataset(config, epoch, validate=False).create_dict_iterator(num_epochs=1, output_numpy=True)
        tagged = task.train_dataset(config, epoch, validate=False, extra_columns=["unique_ids"]).create_dict_iterator(
            num_epochs=1, output_numpy=True)
        for a, b in zip(plain, tagged):
            if not np.array_equal(a["input_ids"], b["input_ids"]):
                raise RuntimeError(f"epoch {epoch} batch {len(order)}: reading unique_ids changed the batch order")
            order.append([row[int(u)] for u in b["unique_ids"][:, 0]])
        epoch += 1
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, order=np.asarray(order[:total], np.int64), weight=head["weight"], bias=head["bias"])
    os.replace(tmp, path)


def hf(seed: int, records: Path, dev: Path, out: Path, epochs: float, loss_kind: str = "hf",
       paired: Path | None = None) -> dict:
    path = out / "hf_results.json"
    out.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        cmd = [sys.executable, __file__, "--hf-worker", "--seed", str(seed), "--records", str(records), "--epochs",
               str(epochs), "--out", str(out), "--hf-loss", loss_kind] + (["--start", str(paired)] if paired else [])
        wall, background = run_measured(cmd, ROOT)
        data = json.loads(path.read_text())
        data.update(wall_s=wall, background_cores=background)
        path.write_text(json.dumps(data, indent=2) + "\n")
    data = json.loads(path.read_text())
    if "eval_wall_s" not in data:
        cmd = [sys.executable, __file__, "--hf-eval-worker", "--dev", str(dev), "--out", str(out)]
        wall, background = run_measured(cmd, ROOT)
        scores = json.loads((out / "hf_eval.json").read_text())
        data.update(eval_wall_s=wall, eval_background_cores=background, exact_match=scores["exact_match"],
                    f1=scores["f1"], questions=scores["total"], eval_model_s=scores["model_s"],
                    eval_features_s=scores["features_s"])
        path.write_text(json.dumps(data, indent=2) + "\n")
    return data


def masked_span_loss(start_logits, end_logits, start_positions, end_positions, input_mask):
    """This project's span loss in PyTorch: the mean of start and end cross-entropy with the padding
    left out of the softmax (src.training.span_loss)."""
    import torch

    bias = (1.0 - input_mask.float()) * -10000.0
    return sum(torch.nn.functional.cross_entropy(logits + bias, positions)
               for logits, positions in ((start_logits, start_positions), (end_logits, end_positions))) / 2


def hf_worker(seed: int, records: Path, epochs: float, out: Path, loss_kind: str = "hf",
              paired: Path | None = None) -> None:
    """HuggingFace fine-tuning on the records' windows (runs in its own process); saves the model.
    ``loss_kind`` "hf": the model's own loss (padding in the softmax); "masked": this project's.
    ``paired``: an npz of :func:`paired_worker` (our run's span-head start and batch order)."""
    os.environ.setdefault("USE_TF", "0")
    import numpy as np
    import torch
    import transformers

    from src.config import SquadConfig, parse_config
    from src.data.records import read_batches
    from src.sample_data import fetch

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    config = parse_config(SquadConfig, ["--config", str(CONFIG)])
    info = json.loads((records / "dataset.json").read_text())
    batch = next(read_batches(records / info["splits"]["train"]["file"], batch_size=10 ** 7))
    train = {k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in batch.items()}
    model = transformers.BertForQuestionAnswering.from_pretrained(
        fetch("minilm"), hidden_dropout_prob=config.model.hidden_dropout_prob,
        attention_probs_dropout_prob=config.model.attention_probs_dropout_prob)
    def batch_loss(idx):
        output = model(input_ids=train["input_ids"][idx], attention_mask=train["input_mask"][idx],
                       token_type_ids=train["segment_ids"][idx], start_positions=train["start_positions"][idx, 0],
                       end_positions=train["end_positions"][idx, 0])
        if loss_kind == "hf":
            return output.loss
        return masked_span_loss(output.start_logits, output.end_logits, train["start_positions"][idx, 0],
                                train["end_positions"][idx, 0], train["input_mask"][idx])

    batches = None
    if paired:
        start = np.load(paired)
        with torch.no_grad():
            model.qa_outputs.weight.copy_(torch.from_numpy(start["weight"]))
            model.qa_outputs.bias.copy_(torch.from_numpy(start["bias"]))
        batches = [torch.from_numpy(rows) for rows in start["order"]]
    result = train_hf(model, batch_loss, len(train["input_ids"]), config, epochs, seed, log_every=50,
                      batches=batches)
    model.save_pretrained(out / "hf_model")
    (out / "hf_results.json").write_text(json.dumps(result, indent=2) + "\n")


def hf_eval_worker(dev: Path, out: Path) -> None:
    """HuggingFace evaluation end to end: dev JSON -> features -> logits -> predictions -> scores."""
    os.environ.setdefault("USE_TF", "0")
    import numpy as np
    import torch
    import transformers

    from src.config import SquadConfig, parse_config
    from src.data.squad_data import convert_examples_to_features, read_squad_examples
    from src.sample_data import fetch
    from src.squad_metrics import evaluate_v1
    from src.squad_postprocess import write_predictions
    from src.tokenization import tokenizer_for_vocab

    torch.set_num_threads(2)
    config = parse_config(SquadConfig, ["--config", str(CONFIG)])
    tick = time.perf_counter()
    tokenizer = tokenizer_for_vocab(fetch("minilm") / "vocab.txt")
    examples, _ = read_squad_examples(dev, is_training=False)
    features = convert_examples_to_features(examples, tokenizer, config.model.seq_length, config.doc_stride,
                                            config.max_query_length)
    features_s = time.perf_counter() - tick
    model = transformers.BertForQuestionAnswering.from_pretrained(out / "hf_model").eval()
    arrays = {k: torch.tensor([getattr(f, k) for f in features]) for k in ("input_ids", "input_mask", "segment_ids")}
    logits = {}
    tick = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(features), config.eval_batch_size):
            sl = slice(b, b + config.eval_batch_size)
            output = model(input_ids=arrays["input_ids"][sl], attention_mask=arrays["input_mask"][sl],
                           token_type_ids=arrays["segment_ids"][sl])
            for i, feature in enumerate(features[sl]):
                logits[feature.unique_id] = (output.start_logits[i].numpy().astype(np.float32),
                                             output.end_logits[i].numpy().astype(np.float32))
    model_s = time.perf_counter() - tick
    predictions, _, _ = write_predictions(examples, features, logits, config.n_best_size, config.max_answer_length,
                                          tokenizer.do_lower_case)
    scores = evaluate_v1(json.loads(dev.read_text(encoding="utf-8"))["data"], predictions)
    (out / "hf_predictions.json").write_text(json.dumps(predictions, ensure_ascii=False) + "\n")
    (out / "hf_eval.json").write_text(json.dumps({**scores, "features_s": features_s, "model_s": model_s}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--sides", nargs="+", choices=("ours", "hf"), default=["ours", "hf"])
    parser.add_argument("--train-questions", type=int, default=6400, help="training subset size (0: all)")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over the training subset")
    parser.add_argument("--dev-articles", type=int, default=0, help="score the first K dev articles only (0: all)")
    parser.add_argument("--workdir", default=str(ROOT / "output" / "squad_minilm"))
    parser.add_argument("--json", default="", help="write the raw numbers here")
    parser.add_argument("--hf-loss", choices=("hf", "masked"), default="hf",
                        help="HuggingFace's side: its own loss (padding in the softmax) or this project's masked one")
    parser.add_argument("--v2-style", action="store_true", help="also score our model (first seed) on the "
                        "SQuAD 2.0-style set built from v1.1 dev (tools/create_squad_data.py --task "
                        "squad_v1_unanswerable), about 15 minutes")
    parser.add_argument("--paired", action="store_true", help="HuggingFace starts from our run's span-head weights "
                        "and reads our run's batches in our order (same seed), so that only dropout and arithmetic "
                        "differ between the two sides")
    parser.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--paired-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--start", default="", help=argparse.SUPPRESS)
    parser.add_argument("--hf-eval-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--records", default="", help=argparse.SUPPRESS)
    parser.add_argument("--dev", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hf_worker:
        hf_worker(args.seed, Path(args.records), args.epochs, Path(args.out), args.hf_loss,
                  Path(args.start) if args.start else None)
        return 0
    if args.paired_worker:
        paired_worker(args.seed, Path(args.checkpoint), Path(args.records), args.epochs, Path(args.out))
        return 0
    if args.hf_eval_worker:
        hf_eval_worker(Path(args.dev), Path(args.out))
        return 0

    epochs = args.epochs
    tag = hashlib.sha256(CONFIG.read_bytes()).hexdigest()[:8]
    work = Path(args.workdir) / f"q{args.train_questions}-dev{args.dev_articles or 'all'}-config{tag}"
    work.mkdir(parents=True, exist_ok=True)
    converted, records, dev = prepare(work, args.train_questions, args.dev_articles)
    runs = []
    for seed in args.seeds:
        for side in args.sides:
            loss = "" if side == "ours" or args.hf_loss == "hf" else f"-{args.hf_loss}loss"
            paired = "-paired" if side == "hf" and args.paired else ""
            out = work / f"{side}{paired}{loss}-epochs{epochs:g}-seed{seed}"
            if side == "ours":
                result = ours(seed, converted, records, dev, out, epochs)
            else:
                start = paired_start(seed, converted, records, epochs, work) if args.paired else None
                result = hf(seed, records, dev, out, epochs, args.hf_loss, start)
            runs.append({"seed": seed, "side": side, **result})
            print(json.dumps(runs[-1]), flush=True)

    info = json.loads((records / "dataset.json").read_text())
    train = info["splits"]["train"]
    print(f"\nSQuAD v1.1: all-MiniLM-L6-v2, {train['questions']:,} training questions ({train['examples']:,} windows) "
          f"drawn from {train['questions_in_file']:,}, seq 384, doc_stride 128, batch 32, {epochs:g} epochs, seeds "
          f"{', '.join(map(str, args.seeds))}; dev: {runs[0]['questions']:,} questions\n")
    print("| model | EM | F1 | train samples/s | steady samples/s | train wall (s) | eval end to end (s) "
          "| eval features (s) | background cores |")
    print("| --- " * 9 + "|")
    groups: dict = {}
    for run in runs:
        groups.setdefault(run["side"], []).append(run)
    summary = {}
    for side, group in groups.items():
        mean = {k: statistics.mean(r[k] for r in group) for k in ("exact_match", "f1", "samples_per_second",
                                                                  "steady_samples_per_second", "wall_s",
                                                                  "eval_wall_s", "eval_features_s")}
        summary[side] = mean
        background = max(max(r["background_cores"], r["eval_background_cores"]) for r in group)
        name = "ours (run_squad.py)" if side == "ours" else "HF BertForQuestionAnswering"
        print(f"| {name} | {mean['exact_match']:.2f} | {mean['f1']:.2f} | {mean['samples_per_second']:.1f} | "
              f"{mean['steady_samples_per_second']:.1f} | {mean['wall_s']:.0f} | {mean['eval_wall_s']:.0f} | "
              f"{mean['eval_features_s']:.0f} | {background:.2f} |")
    a, b = summary.get("ours"), summary.get("hf")
    if a and b:
        print(f"\nours - HF: EM {a['exact_match'] - b['exact_match']:+.2f}, F1 {a['f1'] - b['f1']:+.2f} points; "
              f"training samples/s {a['samples_per_second'] / b['samples_per_second']:.2f}x (steady "
              f"{a['steady_samples_per_second'] / b['steady_samples_per_second']:.2f}x); evaluation end to end "
              f"{b['eval_wall_s'] / a['eval_wall_s']:.2f}x")
    v2 = None
    if args.v2_style and "ours" in args.sides:
        v2 = v2_style(work, work / f"ours-epochs{epochs:g}-seed{args.seeds[0]}")
        print(f"\nSQuAD 2.0-style set from v1.1 dev: {v2['questions']:,} questions, {v2['unanswerable']:,} of them "
              "unanswerable; ours (trained on v1.1 only), v2.0 scoring\n")
        print("| threshold | exact | F1 | HasAns exact | HasAns F1 | NoAns exact | NoAns F1 |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        d, b = v2["default"], v2["at_best"]
        print(f"| 0.0 (default) | {d['exact']:.2f} | {d['f1']:.2f} | {d['HasAns_exact']:.2f} | {d['HasAns_f1']:.2f} | "
              f"{d['NoAns_exact']:.2f} | {d['NoAns_f1']:.2f} |")
        print(f"| {v2['best_threshold']:.3f} (best F1 from the null odds) | {b['exact']:.2f} | {b['f1']:.2f} | "
              f"{b['HasAns_exact']:.2f} | {b['HasAns_f1']:.2f} | {b['NoAns_exact']:.2f} | {b['NoAns_f1']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"epochs": epochs, "runs": runs, "summary": summary, "v2_style": v2},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
