"""Pretrain BERT or NEZHA (masked LM + next-sentence prediction) on MindRecord/TFRecord shards.

Single device (CPU for development, GPU, Ascend)::

    python run_pretrain.py --config configs/pretrain_base.yaml --data_dir data/en --output_dir output/pretrain
    python run_pretrain.py --model bert_tiny --data_dir data/en --train_steps 100 --batch_size 8

Distributed: see scripts/run_distributed_pretrain_{ascend,gpu,msrun}.sh, which set the rank
environment and call this script with ``--distribute true``.

The config comes from dataclass defaults (src/config.py: PretrainConfig), then ``--config YAML``,
then ``--key value`` options (nested: ``--optimizer.lamb.learning_rate 1e-4``). A run resumes from
the newest checkpoint in ``OUTPUT_DIR/checkpoints`` (weights, optimizer state, step, loss scale,
data position) unless ``--resume false``. Rank 0 logs step, loss, MLM/NSP loss, lr, loss scale,
overflow, samples/s and MFU, and writes ``metrics.jsonl``, ``config.yaml``, ``loss_curve.png`` and,
with ``--eval_data_dir`` (held-out records) or ``--eval_train_batches N`` (a sample of the training
records), ``eval_results.json`` into ``OUTPUT_DIR``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from src.runtime import (append_jsonl, measure_matmul_peak, plot_loss_curve, setup_devices,  # noqa: F401
                         training_flops_per_sequence, write_json)

logger = logging.getLogger("run_pretrain")


def data_mode(data_dir: str) -> Optional[str]:
    """``nsp`` or ``line_by_line`` from the create_pretraining_data summary in ``data_dir``, if any."""
    summaries = sorted(Path(data_dir).glob("*-summary.json")) if Path(data_dir).is_dir() else []
    if not summaries:
        return None
    return json.loads(summaries[0].read_text(encoding="utf-8")).get("config", {}).get("mode")


def run(config) -> dict:
    """Train (and evaluate) as configured; returns the final metrics. Rank 0 holds the output
    directory's lock (src/run_state.py) while it runs."""
    with contextlib.ExitStack() as stack:
        return _run(config, stack)


def _run(config, stack: contextlib.ExitStack) -> dict:
    import mindspore as ms
    from mindspore import nn
    from tqdm import tqdm

    from src.checkpoint import load_checkpoint_into
    from src.checkpoint_manager import CheckpointManager
    from src.config import ConfigError, save_yaml
    from src.data.dataset import create_pretraining_dataset, pretraining_record_files, validate_pretraining_files
    from src.fused_ops import reset_dropout_rng
    from src.optimization import build_optimizer, learning_rate_at
    from src.pretrain_eval import evaluate_pretraining, format_metrics
    from src.run_state import OutputLock, resume_or_start
    from src.training import BertPretrainingLoss, TrainStep

    if not config.data_dir:
        raise ConfigError("data_dir is not set: pass --data_dir DIR (records from tools/create_pretraining_data.py)")
    if not Path(config.data_dir).exists():
        raise ConfigError(f"data_dir {config.data_dir} does not exist")
    if data_mode(config.data_dir) == "line_by_line" and config.use_nsp:
        raise ConfigError(f"{config.data_dir} holds line_by_line records (no next sentences): set --use_nsp false")
    rank, group_size = setup_devices(config.mode, config.device_target, config.device_id,
                                     config.distribute)
    ms.set_seed(config.seed)
    reset_dropout_rng()  # this run's dropout stream (a resume restores its position)
    output = Path(config.output_dir)
    is_main = rank == 0
    if is_main:
        stack.enter_context(OutputLock(output))
    files = pretraining_record_files(config.data_dir)
    logger.info("rank %d reads data shard %d of %d over %d record files in %s", rank, rank, group_size, len(files),
                config.data_dir)
    model = config.model
    max_predictions = None

    def dataset_for(epoch: int, skip_batches: int, validate: bool):
        nonlocal max_predictions
        dataset = create_pretraining_dataset(
            files, config.batch_size, model.seq_length, max_predictions, model.vocab_size, rank=rank,
            group_size=group_size, shuffle=config.shuffle, seed=config.seed + epoch, validate=validate)
        return dataset.skip(skip_batches) if skip_batches else dataset

    from src.data.records import record_columns
    max_predictions = {c.name: c.length for c in record_columns(files[0])}["masked_lm_ids"]
    first = dataset_for(0, 0, validate=True)  # checks seq_length, max_predictions and vocab against the config
    eval_files = None
    if config.eval_data_dir:  # checked now, not after the last step
        eval_files = pretraining_record_files(config.eval_data_dir)
        validate_pretraining_files(eval_files, model.seq_length, max_predictions, model.vocab_size)
    batches_per_epoch = first.get_dataset_size()
    if batches_per_epoch < config.accumulation_steps:
        raise ConfigError(f"{config.data_dir} gives {batches_per_epoch} batches of {config.batch_size} per rank, "
                          f"fewer than accumulation_steps {config.accumulation_steps}")

    network = BertPretrainingLoss(model, use_nsp=config.use_nsp)
    network.set_train(True)
    optimizer = build_optimizer(config.optimizer, network.trainable_params(), config.train_steps)
    reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True, degree=group_size) if config.distribute \
        else None
    scale = config.loss_scale
    step_fn = TrainStep(network, optimizer, loss_scale=scale.initial_scale if scale.enabled else None,
                        scale_factor=scale.factor, scale_window=scale.window,
                        accumulation_steps=config.accumulation_steps, clip_norm=config.clip_norm,
                        grad_reducer=reducer, group_size=group_size)
    manager = CheckpointManager(output / "checkpoints", keep=config.keep_checkpoint_max, prefix="pretrain")
    metrics_path = output / "metrics.jsonl"
    step = batches = 0
    meta = resume_or_start(config, manager, step_fn.state(), output, metrics_path, [output / "eval_results.json"],
                           is_main)
    if meta is not None:
        step, batches = meta["step"], meta["batches"]
    elif config.init_checkpoint:
        report = load_checkpoint_into(network, config.init_checkpoint)
        logger.info("initialised from %s:\n%s", config.init_checkpoint, report.summary())
    if is_main:
        output.mkdir(parents=True, exist_ok=True)
        save_yaml(config, output / "config.yaml")

    selected = config.optimizer.selected
    decay_steps = selected.decay_steps or config.train_steps
    flops = training_flops_per_sequence(model, model.seq_length, max_predictions)
    peak = config.peak_tflops or (measure_matmul_peak() if config.device_target == "CPU" and is_main else 0.0)
    bar = tqdm(total=config.train_steps, initial=step, disable=not (config.progress and is_main), unit="step")
    window = {"loss": 0.0, "mlm_loss": 0.0, "nsp_loss": 0.0, "n": 0, "overflow": 0, "start": time.perf_counter(),
              "sequences": 0}
    epoch = batches // batches_per_epoch
    sink = config.enable_data_sink and config.device_target != "CPU"
    if config.enable_data_sink and not sink and is_main:
        logger.info("data sink mode is not available on CPU: feeding batches from the host")
    while step < config.train_steps:
        dataset = first if (epoch == 0 and batches == 0) else dataset_for(epoch, batches % batches_per_epoch, False)
        if sink:
            sink_size = min(config.data_sink_steps, batches_per_epoch - batches % batches_per_epoch)
            runner = ms.data_sink(step_fn, dataset, sink_size=sink_size)
            calls = (batches_per_epoch - batches % batches_per_epoch) // sink_size
            iterator = (runner() for _ in range(calls))
            per_call = sink_size
        else:
            iterator = (step_fn(*batch) for batch in dataset.create_tuple_iterator(num_epochs=1))
            per_call = 1
        for loss, aux, overflow, loss_scale, applied in iterator:
            batches += per_call
            window["sequences"] += per_call * config.batch_size * group_size
            if not bool(applied.asnumpy()):
                continue
            step += per_call // config.accumulation_steps if sink else 1
            window["loss"] += float(loss.asnumpy())
            window["mlm_loss"] += float(aux[0].asnumpy())
            window["nsp_loss"] += float(aux[1].asnumpy())
            window["overflow"] += int(overflow.asnumpy())
            window["n"] += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.train_steps:
                elapsed = time.perf_counter() - window["start"]
                n = window["n"]
                record = {"event": "train", "step": step, "loss": window["loss"] / n,
                          "mlm_loss": window["mlm_loss"] / n, "nsp_loss": window["nsp_loss"] / n,
                          "lr": learning_rate_at(step, selected.learning_rate, selected.end_learning_rate,
                                                 selected.warmup_steps, decay_steps, selected.power),
                          "loss_scale": float(loss_scale.asnumpy()), "overflow_steps": window["overflow"],
                          "samples_per_second": window["sequences"] / elapsed, "epoch": epoch, "steps": n,
                          "samples": window["sequences"], "seconds": elapsed}
                record["mfu"] = record["samples_per_second"] * flops / (peak * 1e12) if peak else None
                if is_main:
                    _log_train(record, metrics_path, scale.enabled)
                window.update(loss=0.0, mlm_loss=0.0, nsp_loss=0.0, n=0, overflow=0, sequences=0,
                              start=time.perf_counter())
            if is_main and (step % config.save_checkpoint_steps == 0 or step == config.train_steps):
                manager.save(step_fn.state(), step, batches, epoch)
            if step >= config.train_steps:
                break
        else:  # the epoch ran out before train_steps: next epoch, new order
            epoch += 1
    bar.close()

    results: dict = {"step": step}
    if config.eval_train_batches:
        # records the run has trained on: read next to the held-out numbers, the gap shows memorisation
        seen = evaluate_pretraining(network, dataset_for(0, 0, False), config.eval_train_batches, config.use_nsp)
        results["train_sample"] = seen
        if is_main:
            print(format_metrics(seen, f"training records ({config.eval_train_batches} batches)"), flush=True)
    if config.eval_data_dir:
        eval_set = create_pretraining_dataset(eval_files, config.batch_size, model.seq_length, max_predictions,
                                              model.vocab_size, rank=rank, group_size=group_size, shuffle=False,
                                              drop_remainder=False)
        results.update(evaluate_pretraining(network, eval_set, config.eval_batches, config.use_nsp))
        if is_main:
            print(format_metrics(results, "held-out"), flush=True)
    if is_main and len(results) > 1:
        write_json(output / "eval_results.json", results)
    if is_main and metrics_path.exists():
        plot_loss_curve(metrics_path, output / "loss_curve.png",
                        [("loss", "loss"), ("mlm_loss", "MLM loss"), ("nsp_loss", "NSP loss")])
    return results


def _log_train(record: dict, metrics_path: Path, loss_scaling: bool = True) -> None:
    mfu = f" mfu {record['mfu']:.1%}" if record["mfu"] is not None else ""
    scale = f" scale {record['loss_scale']:.0f}" if loss_scaling else ""
    logger.info("step %d loss %.4f (mlm %.4f nsp %.4f) lr %.3g%s overflow %d %.1f samples/s%s",
                record["step"], record["loss"], record["mlm_loss"], record["nsp_loss"], record["lr"],
                scale, record["overflow_steps"], record["samples_per_second"], mfu)
    append_jsonl(metrics_path, record)


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("GLOG_v", "3")
    from src.checkpoint import CheckpointError
    from src.config import ConfigError, PretrainConfig, parse_config
    from src.data.dataset import DataMismatchError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = parse_config(PretrainConfig, argv, description=__doc__)
        run(config)
    except (ConfigError, CheckpointError, DataMismatchError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
