"""Fine-tune BERT or NEZHA for sentence(-pair) classification or regression (GLUE, CLUE, your CSV).

First turn a task into records with tools/create_classifier_data.py, then::

    python tools/create_classifier_data.py --task sst2 --data_dir glue/SST-2 --vocab_file vocab.txt \\
        --output_dir data/sst2
    python run_classifier.py --config configs/classifier_sst2.yaml --data_dir data/sst2 \\
        --init_checkpoint bert_base.ckpt --output_dir output/sst2

The label list, the task's metrics (accuracy, F1, MCC, Pearson/Spearman) and regression or
classification come from ``DATA_DIR/dataset.json``. The config comes from dataclass defaults
(src/config.py: ClassifierConfig), then ``--config YAML``, then ``--key value`` options. Training
evaluates every ``eval_every`` steps (default: each epoch) on every example of the eval splits,
keeps the best weights in ``OUTPUT_DIR/best_model.ckpt`` and resumes from the newest checkpoint
in ``OUTPUT_DIR/checkpoints`` after an interruption. Finally the best weights are scored again
(``all_results.json``) and predictions are written as ``predictions_SPLIT.tsv``.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from src.runtime import append_jsonl, plot_loss_curve, setup_devices, write_json

logger = logging.getLogger("run_classifier")


class Task:
    """What dataset.json says about the records: labels, metrics, splits."""

    def __init__(self, data_dir: str):
        from src.data.classifier_data import load_dataset_info

        self.data_dir = Path(data_dir)
        self.info = load_dataset_info(self.data_dir)
        self.labels: Optional[list[str]] = self.info["labels"]
        self.is_regression: bool = self.info["is_regression"]
        self.num_labels = 1 if self.is_regression else len(self.labels)
        self.metrics: list[str] = list(self.info["metrics"])
        self.main_metric: str = self.info["main_metric"]
        self.splits: dict = self.info["splits"]

    def file(self, split: str) -> Path:
        if split not in self.splits:
            raise ValueError(f"split {split!r} is not in {self.data_dir / 'dataset.json'} "
                             f"(it has {', '.join(self.splits)})")
        return self.data_dir / self.splits[split]["file"]

    def examples(self, split: str) -> int:
        return int(self.splits[split]["examples"])

    def guids(self, split: str) -> list[str]:
        path = self.data_dir / f"{split}_ids.txt"
        if not path.exists():
            return [str(i) for i in range(self.examples(split))]
        return path.read_text(encoding="utf-8").splitlines()

    def labelled_splits(self, exclude: str) -> list[str]:
        return [s for s, v in self.splits.items() if v.get("has_labels", True) and s != exclude]


def _columns(seq_length: int, is_regression: bool):
    from src.data.records import Column, finetune_columns

    return finetune_columns(seq_length, [Column("label_ids", "float32", 1)] if is_regression else ())


def check_data(config, task: Task) -> None:
    """Data and model agree: vocab and sequence length (clear errors before any step)."""
    from src.config import ConfigError

    source = task.data_dir / "dataset.json"
    if task.info.get("vocab_size") not in (None, config.model.vocab_size):
        raise ConfigError(f"vocab_size {task.info['vocab_size']} in {source} but {config.model.vocab_size} in the "
                          "model config: the records were tokenized with another vocabulary")
    if task.info["max_seq_length"] != config.model.seq_length:
        raise ConfigError(f"max_seq_length {task.info['max_seq_length']} in {source} but seq_length "
                          f"{config.model.seq_length} in the model config (set --model.seq_length "
                          f"{task.info['max_seq_length']})")


def evaluate(network, task: Task, split: str, config) -> tuple[dict, "np.ndarray"]:  # noqa: F821
    """Metrics of ``network`` on every example of ``split`` and its predictions."""
    from src.classifier import predict_logits, predictions_from_logits
    from src.data.dataset import create_finetune_dataset
    from src.metrics import compute_metrics

    if task.examples(split) == 0:
        raise ValueError(f"split {split!r} of {task.data_dir} has no examples: nothing to evaluate")
    dataset = create_finetune_dataset(task.file(split), config.eval_batch_size, config.model.seq_length,
                                      columns=_columns(config.model.seq_length, task.is_regression), shuffle=False,
                                      drop_remainder=False, vocab_size=config.model.vocab_size)
    logits, labels = predict_logits(network, dataset, config.eval_batch_size)
    if len(logits) != task.examples(split):
        raise RuntimeError(f"scored {len(logits)} rows of {task.file(split)} but dataset.json lists "
                           f"{task.examples(split)}")
    predictions = predictions_from_logits(logits, task.is_regression)
    metrics = compute_metrics(task.metrics, labels, predictions)
    metrics["examples"] = len(labels)
    return metrics, predictions


def write_predictions(path: Path, task: Task, split: str, predictions) -> None:
    """``id<TAB>prediction`` per example (the label name, or the value for regression), atomically."""
    guids = task.guids(split)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "prediction"])
        for guid, value in zip(guids, predictions):
            writer.writerow([guid, f"{float(value):.6g}" if task.is_regression else task.labels[int(value)]])
    os.replace(tmp, path)


def save_weights(network, path: Path) -> None:
    import mindspore as ms

    tmp = path.with_name(f".{path.name}.tmp.ckpt")
    ms.save_checkpoint(network, str(tmp))
    os.replace(tmp, path)


def format_metrics(split: str, metrics: dict) -> str:
    values = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "examples")
    return f"{split}: {values} on {metrics['examples']:,} examples"


def run(config) -> dict:
    """Train, evaluate and predict as configured; returns the flat results of all_results.json."""
    import mindspore as ms
    from tqdm import tqdm

    from src.checkpoint import load_checkpoint_into
    from src.checkpoint_manager import CheckpointManager
    from src.config import ConfigError, save_yaml
    from src.data.dataset import create_finetune_dataset
    from src.optimization import build_optimizer, learning_rate_at
    from src.training import BertClassificationLoss, TrainStep

    if not config.data_dir:
        raise ConfigError("data_dir is not set: pass --data_dir DIR (records from tools/create_classifier_data.py)")
    if not Path(config.data_dir).exists():
        raise ConfigError(f"data_dir {config.data_dir} does not exist")
    task = Task(config.data_dir)
    check_data(config, task)
    eval_splits = list(config.eval_splits) or task.labelled_splits(exclude=config.train_split)
    if config.do_eval and not eval_splits:
        raise ConfigError(f"{task.data_dir} has no labelled split to evaluate besides {config.train_split!r}")
    for split in eval_splits if config.do_eval else []:
        task.file(split)
        if task.examples(split) == 0:
            raise ConfigError(f"eval split {split!r} of {task.data_dir} has no examples")
    predict_splits = list(config.predict_splits) or [s for s in task.splits if s not in task.labelled_splits("")]
    if config.do_predict and not predict_splits:
        raise ConfigError(f"{task.data_dir} has no split without labels to predict: name them with --predict_splits")
    for split in predict_splits if config.do_predict else []:
        task.file(split)
    best_metric = config.metric_for_best or task.main_metric
    if best_metric not in task.metrics:
        raise ConfigError(f"metric_for_best {best_metric!r} is not one of the task's metrics "
                          f"{', '.join(task.metrics)}")

    setup_devices(config.mode, config.device_target, config.device_id)
    ms.set_seed(config.seed)
    output = Path(config.output_dir)
    model = config.model
    columns = _columns(model.seq_length, task.is_regression)
    network = BertClassificationLoss(model, task.num_labels, config.classifier_dropout, config.pooling)
    if config.init_checkpoint:
        report = load_checkpoint_into(network, config.init_checkpoint)
        logger.info("initialised from %s:\n%s", config.init_checkpoint, report.summary())
    elif config.do_train:
        logger.warning("no init_checkpoint: fine-tuning from random initialisation")
    results: dict = {"task": task.info.get("task"), "num_labels": task.num_labels}
    best_path = output / "best_model.ckpt"
    metrics_path = output / "metrics.jsonl"

    if config.do_train:
        train_file = task.file(config.train_split)

        def dataset_for(epoch: int, skip: int, validate: bool):
            dataset = create_finetune_dataset(train_file, config.batch_size, model.seq_length, columns=columns,
                                              shuffle=True, seed=config.seed + epoch, drop_remainder=True,
                                              vocab_size=model.vocab_size, validate=validate)
            return dataset.skip(skip) if skip else dataset

        first = dataset_for(0, 0, validate=True)
        batches_per_epoch = first.get_dataset_size()
        if batches_per_epoch < config.accumulation_steps:
            raise ConfigError(f"{train_file} has {task.examples(config.train_split)} examples: fewer than one "
                              f"optimizer step of batch_size {config.batch_size} x accumulation_steps "
                              f"{config.accumulation_steps}")
        steps_per_epoch = batches_per_epoch // config.accumulation_steps
        total_steps = config.train_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
        selected = config.optimizer.selected
        if config.warmup_proportion > 0:
            selected = dataclasses.replace(selected, warmup_steps=int(total_steps * config.warmup_proportion))
            config.optimizer = dataclasses.replace(config.optimizer, **{config.optimizer.optimizer: selected})
        decay_steps = selected.decay_steps or total_steps
        optimizer = build_optimizer(config.optimizer, network.trainable_params(), total_steps)
        scale = config.loss_scale
        step_fn = TrainStep(network, optimizer, loss_scale=scale.initial_scale if scale.enabled else None,
                            scale_factor=scale.factor, scale_window=scale.window,
                            accumulation_steps=config.accumulation_steps, clip_norm=config.clip_norm)
        network.set_train(True)
        manager = CheckpointManager(output / "checkpoints", keep=config.keep_checkpoint_max or 1, prefix="classifier")
        step = batches = 0
        best = {"step": 0, "metric": best_metric, "value": None}
        latest = manager.latest() if config.resume else None
        if latest is not None:
            meta = manager.restore(latest, step_fn.state())
            step, batches = meta["step"], meta["batches"]
            if (output / "best_model.json").exists():
                best = json.loads((output / "best_model.json").read_text(encoding="utf-8"))
            logger.info("resumed from %s at step %d (%d batches consumed)", latest, step, batches)
        output.mkdir(parents=True, exist_ok=True)
        save_yaml(config, output / "config.yaml")
        logger.info("%d training examples, %d optimizer steps per epoch, %d steps (warmup %d), %d labels, "
                    "evaluating %s by %s", task.examples(config.train_split), steps_per_epoch, total_steps,
                    selected.warmup_steps, task.num_labels, ", ".join(eval_splits) or "nothing", best_metric)

        eval_every = config.eval_every or steps_per_epoch
        save_every = config.save_checkpoint_steps or eval_every
        bar = tqdm(total=total_steps, initial=step, disable=not config.progress, unit="step")
        window = {"loss": 0.0, "n": 0, "overflow": 0, "examples": 0, "seconds": 0.0}
        train = {"examples": 0, "seconds": 0.0, "loss": 0.0, "n": 0}
        epoch = batches // batches_per_epoch
        while step < total_steps:
            dataset = first if (epoch == 0 and batches == 0) else dataset_for(epoch, batches % batches_per_epoch,
                                                                              False)
            tick = time.perf_counter()
            for batch in dataset.create_tuple_iterator(num_epochs=1):
                loss, _, overflow, loss_scale, applied = step_fn(*batch)
                batches += 1
                window["examples"] += config.batch_size
                if not bool(applied.asnumpy()):
                    continue
                step += 1
                window["loss"] += float(loss.asnumpy())
                window["overflow"] += int(overflow.asnumpy())
                window["n"] += 1
                bar.update(1)
                if step % config.log_every == 0 or step == total_steps or step % eval_every == 0:
                    window["seconds"] += time.perf_counter() - tick
                    tick = time.perf_counter()
                    record = {"event": "train", "step": step, "epoch": epoch, "loss": window["loss"] / window["n"],
                              "lr": learning_rate_at(step, selected.learning_rate, selected.end_learning_rate,
                                                     selected.warmup_steps, decay_steps, selected.power),
                              "loss_scale": float(loss_scale.asnumpy()), "overflow_steps": window["overflow"],
                              "samples_per_second": window["examples"] / window["seconds"]}
                    logger.info("step %d/%d loss %.4f lr %.3g scale %.0f overflow %d %.1f samples/s", step,
                                total_steps, record["loss"], record["lr"], record["loss_scale"],
                                record["overflow_steps"], record["samples_per_second"])
                    append_jsonl(metrics_path, record)
                    for key in ("examples", "seconds"):
                        train[key] += window[key]
                    train["loss"] += window["loss"]
                    train["n"] += window["n"]
                    window.update(loss=0.0, n=0, overflow=0, examples=0, seconds=0.0)
                if config.do_eval and (step % eval_every == 0 or step == total_steps):
                    scores = {}
                    for split in eval_splits:
                        scores[split], _ = evaluate(network, task, split, config)
                        logger.info("step %d %s", step, format_metrics(split, scores[split]))
                    append_jsonl(metrics_path, {"event": "eval", "step": step, "epoch": epoch, **{
                        f"{s}_{k}": v for s, m in scores.items() for k, v in m.items()}})
                    value = scores[eval_splits[0]][best_metric]
                    if best["value"] is None or (not math.isnan(value) and value > best["value"]):
                        best = {"step": step, "metric": best_metric, "split": eval_splits[0], "value": value}
                        save_weights(network, best_path)
                        write_json(output / "best_model.json", best)
                    tick = time.perf_counter()
                if step % save_every == 0 or step == total_steps:
                    manager.save(step_fn.state(), step, batches, epoch)
                    tick = time.perf_counter()
                if step >= total_steps:
                    break
            else:  # the epoch ran out before the last step: next epoch, new order
                epoch += 1
        bar.close()
        if not best_path.exists():  # no evaluation: the final weights are the result
            save_weights(network, best_path)
        results.update({"train_steps": step, "train_epochs": round(batches / batches_per_epoch, 3),
                        "train_examples": task.examples(config.train_split),
                        "train_loss": train["loss"] / train["n"] if train["n"] else None,
                        "train_samples_per_second": train["examples"] / train["seconds"] if train["seconds"] else None,
                        "train_runtime_s": train["seconds"], "best_step": best["step"]})
        if best_path.exists() and (config.do_eval or config.do_predict):
            load_checkpoint_into(network, best_path)
        if metrics_path.exists():
            plot_loss_curve(metrics_path, output / "loss_curve.png", [("loss", "training loss")])

    output.mkdir(parents=True, exist_ok=True)
    if config.do_eval:
        for split in eval_splits:
            metrics, predictions = evaluate(network, task, split, config)
            print(format_metrics(split, metrics), flush=True)
            results.update({f"{split}_{k}": v for k, v in metrics.items()})
            write_predictions(output / f"predictions_{split}.tsv", task, split, predictions)
    if config.do_predict:
        from src.classifier import predict_logits, predictions_from_logits

        for split in predict_splits:
            dataset = create_finetune_dataset(task.file(split), config.eval_batch_size, model.seq_length,
                                              columns=columns, shuffle=False, drop_remainder=False,
                                              vocab_size=model.vocab_size)
            logits, _ = predict_logits(network, dataset, config.eval_batch_size)
            path = output / f"predictions_{split}.tsv"
            write_predictions(path, task, split, predictions_from_logits(logits, task.is_regression))
            logger.info("wrote %d predictions to %s", len(logits), path)
    write_json(output / "all_results.json", results)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("GLOG_v", "3")
    from src.checkpoint import CheckpointError
    from src.config import ClassifierConfig, ConfigError, parse_config
    from src.data.dataset import DataMismatchError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = parse_config(ClassifierConfig, argv, description=__doc__)
        run(config)
    except (ConfigError, CheckpointError, DataMismatchError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
