"""Extractive question answering: the task :func:`~src.finetune.finetune` trains on the records of
tools/create_squad_data.py, with batched span scoring over every window of a split,
postprocessing (:mod:`src.squad_postprocess`) and the official scoring (:mod:`src.squad_metrics`).

Evaluation runs the span head on every record of the split (the last partial batch padded, then
trimmed), hands the start/end logits of each window to ``write_predictions`` with the question and
window indexes (``SPLIT_examples.jsonl``, ``SPLIT_features.jsonl``), and scores every question of
the split against its gold answers: SQuAD v1.1 (``exact_match``, ``f1``), v2.0 (``exact``,
``f1``, HasAns / NoAns, best thresholds from the null odds) or CMRC 2018 (``em``, ``f1``).

Shape letters: B batch, S sequence length.
"""
from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import Any, Sequence

import mindspore as ms
import numpy as np

from .config import ConfigError
from .finetune import FinetuneTask, inference_batches
from .heads import BertForQuestionAnswering

_SCORERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # network -> its compiled span function

V1_METRICS = ("exact_match", "f1")
V2_METRICS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact",
              "best_exact_thresh", "best_f1", "best_f1_thresh")
CMRC_METRICS = ("em", "f1", "average")


def span_function(network: BertForQuestionAnswering):
    """A compiled function (input_ids, input_mask, segment_ids) int32 [B, S] -> float32 start and end
    logits [B, S] of ``network`` at inference."""
    function = _SCORERS.get(network)
    if function is None:
        @ms.jit
        def spans(input_ids, input_mask, segment_ids):
            return network.span_logits(input_ids, input_mask, segment_ids)

        function = _SCORERS[network] = spans
    return function


def predict_spans(network: BertForQuestionAnswering, dataset, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 start and end logits [N, S] of every row of ``dataset`` (in order)."""
    from .data.squad_records import INPUT_COLUMNS

    starts, ends = [], []
    for _, (start, end) in inference_batches(network, span_function(network), dataset, INPUT_COLUMNS, batch_size):
        starts.append(start)
        ends.append(end)
    if not starts:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(starts), np.concatenate(ends)


class SquadTask(FinetuneTask):
    """Records of tools/create_squad_data.py; ``config`` (a :class:`~src.config.SquadConfig`) gives
    the postprocessing settings and the feature settings the records must have."""

    name = "squad"
    data_tool = "tools/create_squad_data.py"

    def __init__(self, data_dir: str | os.PathLike, config):
        from .data.squad_records import load_squad_info

        super().__init__(data_dir, load_squad_info(Path(data_dir)))
        self.config = config
        self.version_2 = self.info["version_2_with_negative"]
        self.scorer = self.info["scorer"]
        self._check_settings(config)
        if self.scorer == "cmrc":
            self.metrics, self.main_metric = list(CMRC_METRICS), "f1"
        elif self.version_2:
            self.metrics, self.main_metric = list(V2_METRICS), "f1"
        else:
            self.metrics, self.main_metric = list(V1_METRICS), "f1"
        self.do_lower_case = (self.info.get("do_lower_case", True) if config.do_lower_case is None
                              else config.do_lower_case)
        self._index: dict = {}

    def _check_settings(self, config) -> None:
        """The run's feature settings agree with the records' (a v2 set is never scored as v1)."""
        source = self.data_dir / "dataset.json"
        for key in ("version_2_with_negative", "doc_stride", "max_query_length"):
            wanted = getattr(config, key)
            if wanted is not None and wanted != self.info[key]:
                hint = (" (SQuAD 2.0 data scored as 1.1 would count every unanswerable question wrong)"
                        if key == "version_2_with_negative" and self.info[key] else "")
                raise ConfigError(f"{key} {self.info[key]} in {source} but {wanted} in the config{hint}: rebuild the "
                                  f"records with --{key} {wanted}, or set --{key} {self.info[key]}")

    def summary(self) -> dict:
        return {"task": "squad", "version_2_with_negative": self.version_2, "scorer": self.scorer,
                "max_seq_length": self.info["max_seq_length"], "doc_stride": self.info["doc_stride"],
                "max_query_length": self.info["max_query_length"]}

    def index(self, split: str):
        """(examples, features) of an evaluation split."""
        from .data.squad_records import read_split_index

        if self.splits[split].get("training"):
            raise ConfigError(f"split {split!r} of {self.data_dir} was written for training (no question index): "
                              f"make it with --predict_file to evaluate or predict it")
        if split not in self._index:
            self._index[split] = read_split_index(self.data_dir, self.splits[split])
        return self._index[split]

    def check_split(self, split: str, config, open_records: bool = True) -> None:
        super().check_split(split, config, open_records)
        if open_records:
            self.index(split)

    def build_network(self, config):
        from .training import BertQuestionAnsweringLoss

        return BertQuestionAnsweringLoss(config.model)

    def _dataset(self, split: str, config, names=None, **kwargs):
        """The records of ``split``: the model's inputs, or the columns ``names``."""
        from .data.dataset import create_finetune_dataset
        from .data.squad_records import INPUT_COLUMNS, columns

        seq = config.model.seq_length
        names = names or INPUT_COLUMNS
        return create_finetune_dataset(self.file(split), kwargs.pop("batch_size", config.eval_batch_size), seq,
                                       columns=columns(seq, names), label_length=seq,
                                       vocab_size=config.model.vocab_size, **kwargs)

    def train_dataset(self, config, epoch: int, validate: bool, extra_columns: Sequence[str] = ()):
        """The training batches; ``extra_columns`` (e.g. ``unique_ids``) are read after the model's
        columns without changing the batches' order."""
        from .data.squad_records import TRAIN_COLUMNS

        return self._dataset(config.train_split, config, TRAIN_COLUMNS + tuple(extra_columns),
                             batch_size=config.batch_size, shuffle=True, seed=config.seed + epoch,
                             drop_remainder=True, validate=validate)

    def predict(self, network, split: str, config) -> dict:
        """``{"predictions", "nbest", "null_odds"}`` for every question of ``split``."""
        from .squad_postprocess import write_predictions

        examples, features = self.index(split)
        starts, ends = predict_spans(network, self._dataset(split, config, shuffle=False, drop_remainder=False),
                                     config.eval_batch_size)
        if len(starts) != len(features):
            raise RuntimeError(f"scored {len(starts)} windows of {self.file(split)} but its index lists "
                               f"{len(features)}")
        logits = {f.unique_id: (starts[i], ends[i]) for i, f in enumerate(features)}
        predictions, nbest, null_odds = write_predictions(
            examples, features, logits, config.n_best_size, config.max_answer_length, self.do_lower_case,
            self.version_2, config.null_score_diff_threshold)
        return {"predictions": predictions, "nbest": nbest, "null_odds": null_odds}

    def evaluate(self, network, split: str, config) -> tuple[dict, Any]:
        output = self.predict(network, split, config)
        return self.score(split, output["predictions"], output["null_odds"]), output

    def score(self, split: str, predictions: dict, null_odds: dict) -> dict:
        """The official figures of ``split`` for ``predictions`` (question id -> text)."""
        from .data.squad_records import gold_dataset
        from .squad_metrics import evaluate_cmrc, evaluate_v1, evaluate_v2

        examples, _ = self.index(split)
        gold = gold_dataset(examples)
        if self.scorer == "cmrc":
            result = evaluate_cmrc(gold, predictions)
        elif self.version_2:
            result = evaluate_v2(gold, predictions, null_odds)
        else:
            result = evaluate_v1(gold, predictions)
        metrics = {k: result[k] for k in self.metrics if k in result}
        metrics["examples"] = len(examples)
        return metrics

    def write_predictions(self, output: Path, split: str, predictions: dict) -> Path:
        """``predictions_SPLIT.json`` (question id -> answer text, the official scripts' input),
        ``nbest_predictions_SPLIT.json`` and, for SQuAD 2.0, ``null_odds_SPLIT.json``; atomically."""
        output = Path(output)
        path = output / f"predictions_{split}.json"
        _write_json(path, predictions["predictions"])
        _write_json(output / f"nbest_predictions_{split}.json", predictions["nbest"])
        if self.version_2:
            _write_json(output / f"null_odds_{split}.json", predictions["null_odds"])
        return path


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["SquadTask", "predict_spans", "span_function"]
