"""Sentence(-pair) classification and regression: batched prediction over a whole record file
and the task :func:`~src.finetune.finetune` trains (the training loss is
:class:`~src.training.BertClassificationLoss`).

Shape letters: B batch, S sequence length, C number of labels (1 for regression).
"""
from __future__ import annotations

import csv
import os
import weakref
from pathlib import Path

import mindspore as ms
import numpy as np

from .finetune import FinetuneTask, inference_batches
from .heads import BertForSequenceClassification


_PREDICTORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # network -> its compiled logits function


def logits_function(network: BertForSequenceClassification):
    """A compiled function (input_ids, input_mask, segment_ids) int32 [B, S] -> float32 logits [B, C]
    of ``network`` at inference (dropout is off in eval mode).

    A function rather than a wrapping Cell: a Cell holding ``network`` as an attribute would prefix
    its parameter names (``network.bert...``) and break checkpoints saved afterwards.
    """
    function = _PREDICTORS.get(network)
    if function is None:
        @ms.jit
        def logits(input_ids, input_mask, segment_ids):
            return network.classifier(network.sentence_vector(input_ids, input_mask, segment_ids)).astype(ms.float32)

        function = _PREDICTORS[network] = logits
    return function


def predict_logits(network: BertForSequenceClassification, dataset, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of every row of ``dataset``, in order.

    The last partial batch is padded to ``batch_size`` (one compiled shape for every batch) and
    the padding trimmed from the outputs, so no example is dropped or counted twice.

    Args:
        network: a classifier (its training flag is restored afterwards).
        dataset: batches of ``input_ids``, ``input_mask``, ``segment_ids``, ``label_ids``
            (``create_finetune_dataset(..., shuffle=False, drop_remainder=False)``).
        batch_size: the dataset's batch size.

    Returns:
        float32 logits [N, C] and labels [N] (int32 classes or float32 targets).
    """
    logits, labels = [], []
    for batch, (batch_logits,) in inference_batches(network, logits_function(network), dataset,
                                                    ("input_ids", "input_mask", "segment_ids"), batch_size):
        logits.append(batch_logits)
        labels.append(batch["label_ids"].reshape(-1))
    if not logits:
        return np.zeros((0, network.classifier.out_channels), np.float32), np.zeros((0,), np.float32)
    return np.concatenate(logits), np.concatenate(labels)


def predictions_from_logits(logits: np.ndarray, is_regression: bool) -> np.ndarray:
    """Class ids [N] (argmax) or regression values [N] from logits [N, C]."""
    return logits[:, 0] if is_regression else logits.argmax(-1)


class ClassificationTask(FinetuneTask):
    """Records of tools/create_classifier_data.py: dataset.json names the labels, whether the task
    is a regression, its metrics (accuracy, F1, MCC, Pearson/Spearman) and splits."""

    name = "classifier"
    data_tool = "tools/create_classifier_data.py"

    def __init__(self, data_dir: str | os.PathLike):
        from .data.classifier_data import load_dataset_info

        super().__init__(data_dir, load_dataset_info(Path(data_dir)))
        self.labels: list[str] | None = self.info["labels"]
        self.is_regression: bool = self.info["is_regression"]
        self.num_labels = 1 if self.is_regression else len(self.labels)
        self.metrics = list(self.info["metrics"])
        self.main_metric = self.info["main_metric"]

    def summary(self) -> dict:
        return {"task": self.info.get("task"), "num_labels": self.num_labels}

    def guids(self, split: str) -> list[str]:
        path = self.data_dir / f"{split}_ids.txt"
        if not path.exists():
            return [str(i) for i in range(self.examples(split))]
        return path.read_text(encoding="utf-8").splitlines()

    def columns(self, seq_length: int):
        from .data.records import Column, finetune_columns

        return finetune_columns(seq_length, [Column("label_ids", "float32", 1)] if self.is_regression else ())

    def build_network(self, config):
        from .training import BertClassificationLoss

        return BertClassificationLoss(config.model, self.num_labels, config.classifier_dropout, config.pooling)

    def _dataset(self, split: str, config, **kwargs):
        from .data.dataset import create_finetune_dataset

        return create_finetune_dataset(self.file(split), kwargs.pop("batch_size", config.eval_batch_size),
                                       config.model.seq_length, columns=self.columns(config.model.seq_length),
                                       vocab_size=config.model.vocab_size, **kwargs)

    def train_dataset(self, config, epoch: int, validate: bool):
        return self._dataset(config.train_split, config, batch_size=config.batch_size, shuffle=True,
                             seed=config.seed + epoch, drop_remainder=True, validate=validate)

    def _logits(self, network, split: str, config) -> tuple[np.ndarray, np.ndarray]:
        dataset = self._dataset(split, config, shuffle=False, drop_remainder=False)
        logits, labels = predict_logits(network, dataset, config.eval_batch_size)
        if len(logits) != self.examples(split):
            raise RuntimeError(f"scored {len(logits)} rows of {self.file(split)} but dataset.json lists "
                               f"{self.examples(split)}")
        return logits, labels

    def evaluate(self, network, split: str, config) -> tuple[dict, np.ndarray]:
        from .metrics import compute_metrics

        if self.examples(split) == 0:
            raise ValueError(f"split {split!r} of {self.data_dir} has no examples: nothing to evaluate")
        logits, labels = self._logits(network, split, config)
        predictions = predictions_from_logits(logits, self.is_regression)
        metrics = compute_metrics(self.metrics, labels, predictions)
        metrics["examples"] = len(labels)
        return metrics, predictions

    def predict(self, network, split: str, config) -> np.ndarray:
        return predictions_from_logits(self._logits(network, split, config)[0], self.is_regression)

    def write_predictions(self, output: Path, split: str, predictions) -> Path:
        """``id<TAB>prediction`` per example (the label name, or the value for regression), atomically."""
        path = Path(output) / f"predictions_{split}.tsv"
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["id", "prediction"])
            for guid, value in zip(self.guids(split), predictions):
                writer.writerow([guid, f"{float(value):.6g}" if self.is_regression else self.labels[int(value)]])
        os.replace(tmp, path)
        return path


__all__ = ["ClassificationTask", "logits_function", "predict_logits", "predictions_from_logits"]
