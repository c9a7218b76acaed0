"""The fine-tuning loop shared by run_classifier.py, run_ner.py (and run_squad.py).

A task (a :class:`FinetuneTask`) brings what differs: its records and dataset.json, its loss
network, its evaluation (metrics and predictions of every example of a split) and how
predictions are written. :func:`finetune` owns everything else:

    seed -> network (+ init_checkpoint) -> schedule (epochs or steps, warmup proportion) ->
    TrainStep (loss scale, accumulation, clipping) -> train, logging every ``log_every`` steps
    to the console and ``metrics.jsonl`` -> evaluate every ``eval_every`` steps on every example
    of the eval splits -> keep the best weights (``best_model.ckpt`` + ``best_model.json``) ->
    resume checkpoints (``checkpoints/``, restored after a kill) -> loss curve -> reload the best
    weights, score and predict with them -> ``all_results.json``.

The best weights are loaded in place (:func:`~src.checkpoint.load_checkpoint_into`), so a
predictor compiled during training computes with them; tests check the final scores against a
fresh process scoring ``best_model.ckpt``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from .config import ConfigError, save_yaml
from .run_state import OutputLock, read_metrics, resume_or_start, run_totals
from .runtime import append_jsonl, plot_loss_curve, setup_devices, write_json

logger = logging.getLogger("finetune")


class FinetuneTask:
    """A task's records (``DATA_DIR/dataset.json``) and its hooks into :func:`finetune`.

    dataset.json holds ``splits`` ``{name: {"file", "examples", "has_labels"}}``,
    ``max_seq_length`` and ``vocab_size``. Subclasses set :attr:`name`, :attr:`metrics` and
    :attr:`main_metric` and implement the five hooks below.
    """

    name = "task"  #: prefix of the resume checkpoints and the results' ``task`` fallback
    data_tool = "the data tool"  #: what writes the records (named in errors)

    def __init__(self, data_dir: str | os.PathLike, info: dict):
        self.data_dir = Path(data_dir)
        self.info = info
        self.splits: dict = info["splits"]
        self.metrics: list[str] = []
        self.main_metric: str = ""

    # ---- records ---------------------------------------------------------------------
    def file(self, split: str) -> Path:
        if split not in self.splits:
            raise ValueError(f"split {split!r} is not in {self.data_dir / 'dataset.json'} "
                             f"(it has {', '.join(self.splits)})")
        return self.data_dir / self.splits[split]["file"]

    def examples(self, split: str) -> int:
        return int(self.splits[split]["examples"])

    def labelled_splits(self, exclude: str) -> list[str]:
        return [s for s, v in self.splits.items() if v.get("has_labels", True) and s != exclude]

    def check_model(self, model) -> None:
        """The records and the model agree on vocabulary and sequence length."""
        source = self.data_dir / "dataset.json"
        if self.info.get("vocab_size") not in (None, model.vocab_size):
            raise ConfigError(f"vocab_size {self.info['vocab_size']} in {source} but {model.vocab_size} in the "
                              "model config: the records were tokenized with another vocabulary")
        if self.info["max_seq_length"] != model.seq_length:
            raise ConfigError(f"max_seq_length {self.info['max_seq_length']} in {source} but seq_length "
                              f"{model.seq_length} in the model config (set --model.seq_length "
                              f"{self.info['max_seq_length']})")

    def check_split(self, split: str, config, open_records: bool = True) -> None:
        """The records of ``split`` are all there as dataset.json lists them (file, index and sizes)
        and, with ``open_records``, open with the columns and token ids the model expects.

        Raises:
            DataMismatchError: naming the split, the file and what is wrong.
        """
        from .data.dataset import DataMismatchError, manifest_problems

        self.file(split)
        problems = manifest_problems(self.data_dir, [self.splits[split]])
        if problems:
            raise DataMismatchError(f"split {split!r} of {self.data_dir / 'dataset.json'}: {'; '.join(problems)}: the "
                                    f"records are incomplete or were changed; rerun {self.data_tool} with "
                                    "--overwrite true")
        if open_records:
            self._dataset(split, config, shuffle=False, drop_remainder=False)

    def _dataset(self, split: str, config, **kwargs):
        """The records of ``split`` as a ``mindspore.dataset`` (``create_finetune_dataset`` keywords)."""
        raise NotImplementedError

    def summary(self) -> dict:
        """The first keys of all_results.json."""
        return {"task": self.info.get("task") or self.name}

    # ---- hooks -------------------------------------------------------------------------
    def build_network(self, config):
        """The loss network: ``construct(*train_batch) -> (loss, ...)``; its parameters are trained."""
        raise NotImplementedError

    def train_dataset(self, config, epoch: int, validate: bool):
        """Shuffled (seed ``config.seed + epoch``), ``drop_remainder`` batches of the train split."""
        raise NotImplementedError

    def evaluate(self, network, split: str, config) -> tuple[dict, Any]:
        """Metrics (``self.metrics`` plus ``examples``) on every example of ``split``, and its predictions."""
        raise NotImplementedError

    def predict(self, network, split: str, config) -> Any:
        """Predictions for every example of a split without labels."""
        raise NotImplementedError

    def write_predictions(self, output: Path, split: str, predictions) -> Path:
        """Write the predictions of ``split`` into ``output`` (atomically); returns the main file."""
        raise NotImplementedError


def inference_batches(network, function, dataset, names: Sequence[str], batch_size: int):
    """Runs ``function`` (compiled, over ``network`` in eval mode) on every batch of ``dataset`` in
    order; yields ``(batch, outputs)``: the batch's NumPy columns and ``function``'s outputs as
    NumPy arrays trimmed to the batch's rows.

    The columns ``names`` are the inputs; the last partial batch is padded with zero rows to
    ``batch_size`` (one compiled shape for every batch) and the padding trimmed from the outputs,
    so no example is dropped or counted twice. ``network``'s training flag is restored afterwards.
    """
    import mindspore as ms
    import numpy as np

    was_training = network.training
    network.set_train(False)
    try:
        for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
            n = len(batch[names[0]])
            inputs = []
            for name in names:
                array = batch[name].astype(np.int32)
                if n < batch_size:
                    array = np.concatenate([array, np.zeros((batch_size - n, *array.shape[1:]), array.dtype)])
                inputs.append(ms.Tensor(array))
            outputs = function(*inputs)
            outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            yield batch, tuple(o.asnumpy()[:n] for o in outputs)
    finally:
        network.set_train(was_training)


def format_metrics(split: str, metrics: dict) -> str:
    values = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                       if k != "examples" and isinstance(v, (int, float)) and not isinstance(v, bool))
    return f"{split}: {values} on {metrics['examples']:,} examples"


def save_weights(network, path: Path) -> None:
    """``network``'s parameters to ``path``, under a temporary name first."""
    import mindspore as ms

    tmp = path.with_name(f".{path.name}.tmp.ckpt")
    ms.save_checkpoint(network, str(tmp), crc_check=True)
    os.replace(tmp, path)


@dataclasses.dataclass
class Plan:
    """The splits and the metric a run uses, resolved against the records before any step."""

    eval_splits: list[str]
    predict_splits: list[str]
    best_metric: str


def plan(config, task: FinetuneTask) -> Plan:
    """Check the config against the task's records, and every split the run will read (present,
    complete, the model's columns); clear errors before a model is built."""
    task.check_model(config.model)
    eval_splits = list(config.eval_splits) or task.labelled_splits(exclude=config.train_split)
    if config.do_train:  # its columns are checked when training opens it
        task.check_split(config.train_split, config, open_records=False)
    if config.do_eval and not eval_splits:
        raise ConfigError(f"{task.data_dir} has no labelled split to evaluate besides {config.train_split!r}")
    for split in eval_splits if config.do_eval else []:
        task.file(split)
        if task.examples(split) == 0:
            raise ConfigError(f"eval split {split!r} of {task.data_dir} has no examples")
        task.check_split(split, config)
    predict_splits = list(config.predict_splits) or [s for s in task.splits if s not in task.labelled_splits("")]
    if config.do_predict and not predict_splits:
        raise ConfigError(f"{task.data_dir} has no split without labels to predict: name them with --predict_splits")
    for split in predict_splits if config.do_predict else []:
        task.check_split(split, config)
    best_metric = config.metric_for_best or task.main_metric
    if best_metric not in task.metrics:
        raise ConfigError(f"metric_for_best {best_metric!r} is not one of the task's metrics "
                          f"{', '.join(task.metrics)}")
    return Plan(eval_splits, predict_splits, best_metric)


def check_data_dir(config, data_tool: str) -> None:
    if not config.data_dir:
        raise ConfigError(f"data_dir is not set: pass --data_dir DIR (records from {data_tool})")
    if not Path(config.data_dir).exists():
        raise ConfigError(f"data_dir {config.data_dir} does not exist")


def finetune(config, task: FinetuneTask) -> dict:
    """Train, evaluate and predict as ``config`` says (a :class:`~src.config.FinetuneConfig`).

    Returns the flat results written to ``OUTPUT_DIR/all_results.json``.
    """
    run_plan = plan(config, task)
    output = Path(config.output_dir)
    with OutputLock(output):
        return _finetune_locked(config, task, run_plan, output)


def initial_network(config, task: FinetuneTask):
    """The run's loss network before its first step: devices set up, seeded with ``config.seed``
    (so a fresh head gets the same random weights in every process), ``init_checkpoint`` loaded."""
    import mindspore as ms

    from .checkpoint import load_checkpoint_into
    from .fused_ops import reset_dropout_rng

    setup_devices(config.mode, config.device_target, config.device_id)
    ms.set_seed(config.seed)
    reset_dropout_rng()  # this run's dropout stream (a resume restores its position)
    network = task.build_network(config)
    if config.init_checkpoint:
        report = load_checkpoint_into(network, config.init_checkpoint)
        logger.info("initialised from %s:\n%s", config.init_checkpoint, report.summary())
    elif config.do_train:
        logger.warning("no init_checkpoint: fine-tuning from random initialisation")
    return network


def _finetune_locked(config, task: FinetuneTask, run_plan: Plan, output: Path) -> dict:
    from .checkpoint import load_checkpoint_into

    network = initial_network(config, task)
    results: dict = task.summary()
    best_path = output / "best_model.ckpt"

    final_eval: dict = {}  # split -> (metrics, predictions) of the weights in memory, when they are the best
    if config.do_train:
        train_results, final_eval = _train(config, task, network, run_plan, output)
        results.update(train_results)
        if best_path.exists() and (config.do_eval or config.do_predict) and not final_eval:
            load_checkpoint_into(network, best_path)

    output.mkdir(parents=True, exist_ok=True)
    if config.do_eval:
        for split in run_plan.eval_splits:
            metrics, predictions = final_eval.get(split) or task.evaluate(network, split, config)
            print(format_metrics(split, metrics), flush=True)
            results.update({f"{split}_{k}": v for k, v in metrics.items()})
            task.write_predictions(output, split, predictions)
    if config.do_predict:
        for split in run_plan.predict_splits:
            path = task.write_predictions(output, split, task.predict(network, split, config))
            logger.info("wrote the predictions of %s to %s", split, path)
    write_json(output / "all_results.json", results)
    return results


def _schedule(config, total_steps: int):
    """The optimizer section in use, with warmup_steps from ``warmup_proportion`` when it is set."""
    selected = config.optimizer.selected
    if config.warmup_proportion > 0:
        selected = dataclasses.replace(selected, warmup_steps=int(total_steps * config.warmup_proportion))
        config.optimizer = dataclasses.replace(config.optimizer, **{config.optimizer.optimizer: selected})
    return selected


def _train(config, task: FinetuneTask, network, run_plan: Plan, output: Path) -> tuple[dict, dict]:
    """The training loop; returns the ``train_*`` and ``best_step`` results, and when the final
    weights are the best ones and were just evaluated, that evaluation (split -> (metrics,
    predictions)), so that it is not computed again."""
    from tqdm import tqdm

    from .checkpoint_manager import CheckpointManager
    from .optimization import build_optimizer, learning_rate_at
    from .training import TrainStep

    train_file = task.file(config.train_split)
    first = task.train_dataset(config, 0, validate=True)
    batches_per_epoch = first.get_dataset_size()
    if batches_per_epoch < config.accumulation_steps:
        raise ConfigError(f"{train_file} has {task.examples(config.train_split)} examples: fewer than one "
                          f"optimizer step of batch_size {config.batch_size} x accumulation_steps "
                          f"{config.accumulation_steps}")
    steps_per_epoch = batches_per_epoch // config.accumulation_steps
    total_steps = config.train_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    selected = _schedule(config, total_steps)
    decay_steps = selected.decay_steps or total_steps
    optimizer = build_optimizer(config.optimizer, network.trainable_params(), total_steps)
    scale = config.loss_scale
    step_fn = TrainStep(network, optimizer, loss_scale=scale.initial_scale if scale.enabled else None,
                        scale_factor=scale.factor, scale_window=scale.window,
                        accumulation_steps=config.accumulation_steps, clip_norm=config.clip_norm)
    network.set_train(True)
    manager = CheckpointManager(output / "checkpoints", keep=config.keep_checkpoint_max, prefix=task.name)
    best_path, best_json = output / "best_model.ckpt", output / "best_model.json"
    metrics_path = output / "metrics.jsonl"
    eval_splits, best_metric = run_plan.eval_splits if config.do_eval else [], run_plan.best_metric
    step = batches = 0
    best = {"step": 0, "metric": best_metric, "value": None}
    best_path.with_name(f".{best_path.name}.tmp.ckpt").unlink(missing_ok=True)
    meta = resume_or_start(config, manager, step_fn.state(), output, metrics_path, (best_path, best_json))
    if meta is not None:
        step, batches = meta["step"], meta["batches"]
        if best_json.exists():
            best = json.loads(best_json.read_text(encoding="utf-8"))
    output.mkdir(parents=True, exist_ok=True)
    save_yaml(config, output / "config.yaml")
    logger.info("%d training examples, %d optimizer steps per epoch, %d steps (warmup %d), evaluating %s by %s",
                task.examples(config.train_split), steps_per_epoch, total_steps, selected.warmup_steps,
                ", ".join(eval_splits) or "nothing", best_metric)

    eval_every = config.eval_every or steps_per_epoch
    save_every = config.save_checkpoint_steps or eval_every
    final_eval: dict = {}
    bar = tqdm(total=total_steps, initial=step, disable=not config.progress, unit="step")
    window = {"loss": 0.0, "n": 0, "overflow": 0, "examples": 0, "seconds": 0.0}
    epoch = batches // batches_per_epoch
    while step < total_steps:
        if epoch == 0 and batches == 0:
            dataset = first
        else:
            dataset = task.train_dataset(config, epoch, validate=False)
            skip = batches % batches_per_epoch
            dataset = dataset.skip(skip) if skip else dataset
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
                          "samples_per_second": window["examples"] / window["seconds"], "steps": window["n"],
                          "samples": window["examples"], "seconds": window["seconds"]}
                scale_text = f" scale {record['loss_scale']:.0f}" if scale.enabled else ""
                logger.info("step %d/%d loss %.4f lr %.3g%s overflow %d %.1f samples/s", step, total_steps,
                            record["loss"], record["lr"], scale_text, record["overflow_steps"],
                            record["samples_per_second"])
                append_jsonl(metrics_path, record)
                window.update(loss=0.0, n=0, overflow=0, examples=0, seconds=0.0)
            if eval_splits and (step % eval_every == 0 or step == total_steps):
                scores, evaluated = {}, {}
                for split in eval_splits:
                    evaluated[split] = task.evaluate(network, split, config)
                    scores[split] = evaluated[split][0]
                    logger.info("step %d %s", step, format_metrics(split, scores[split]))
                append_jsonl(metrics_path, {"event": "eval", "step": step, "epoch": epoch, **{
                    f"{s}_{k}": v for s, m in scores.items() for k, v in m.items()}})
                value = scores[eval_splits[0]][best_metric]
                if best["value"] is None or (not math.isnan(value) and value > best["value"]):
                    best = {"step": step, "metric": best_metric, "split": eval_splits[0], "value": value}
                    save_weights(network, best_path)
                    write_json(best_json, best)
                final_eval = evaluated if best["step"] == step else {}
                tick = time.perf_counter()
            if step % save_every == 0 or step == total_steps:
                manager.save(step_fn.state(), step, batches, epoch)
                tick = time.perf_counter()
            if step >= total_steps:
                break
        else:  # the epoch ran out before the last step: next epoch, new order
            epoch += 1
    bar.close()
    if not eval_splits:  # no evaluation: the final weights are the result
        save_weights(network, best_path)
    if metrics_path.exists():
        plot_loss_curve(metrics_path, output / "loss_curve.png", [("loss", "training loss")])
    results = {"train_steps": step, "train_epochs": round(batches / batches_per_epoch, 3),
               "train_examples": task.examples(config.train_split), **run_totals(read_metrics(metrics_path)),
               "best_step": best["step"]}
    return results, (final_eval if best["step"] == step else {})


def run_main(config_cls: type, make_task, argv: Optional[Sequence[str]], description: str,
             data_tool: str) -> int:
    """The body of a ``run_*.py`` ``main``: parse the config, build the task, fine-tune; errors a
    user can fix are printed as ``error: ...`` with exit code 1."""
    from .checkpoint import CheckpointError
    from .config import parse_config
    from .data.dataset import DataMismatchError

    os.environ.setdefault("GLOG_v", "3")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = parse_config(config_cls, argv, description=description)
        check_data_dir(config, data_tool)
        finetune(config, make_task(config))
    except (ConfigError, CheckpointError, DataMismatchError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


__all__ = ["FinetuneTask", "Plan", "finetune", "format_metrics", "inference_batches", "initial_network", "plan",
           "run_main", "save_weights"]
