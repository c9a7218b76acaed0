"""Named-entity recognition: the task :func:`~src.finetune.finetune` trains (records of
tools/create_ner_data.py), batched decoding over a whole record file, sentence-level scoring
and the prediction files.

Evaluation decodes every row (the last partial batch padded, then trimmed), takes the predicted
tag at each ``label_mask`` position (a token's first piece), merges the windows of a long
sentence back into one tag sequence, and scores entities against the gold tags of the sentence
index (``SPLIT_sentences.jsonl``): every gold entity counts, whatever the sequence length.

Shape letters: B batch, S sequence length, C number of tags.
"""
from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np

from . import ner_metrics, tagging
from .finetune import FinetuneTask, inference_batches
from .heads import BertForTokenClassification

_DECODERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # network -> its compiled decoder


def decode_function(network: BertForTokenClassification):
    """A compiled function (input_ids, input_mask, segment_ids, label_mask) int32 [B, S] -> int32
    tag ids [B, S] of ``network`` at inference (Viterbi with a CRF, else argmax)."""
    function = _DECODERS.get(network)
    if function is None:
        @ms.jit
        def decode(input_ids, input_mask, segment_ids, label_mask):
            return network.decode(input_ids, input_mask, segment_ids, label_mask)

        function = _DECODERS[network] = decode
    return function


def predict_rows(network: BertForTokenClassification, dataset, batch_size: int) -> list[np.ndarray]:
    """For every row of ``dataset`` in order, the predicted tag ids at its ``label_mask`` positions.

    Args:
        network: a tagger (its training flag is restored afterwards).
        dataset: batches with ``input_ids``, ``input_mask``, ``segment_ids``, ``label_mask``
            (``shuffle=False, drop_remainder=False``); the last one is padded to ``batch_size``.
        batch_size: the dataset's batch size.
    """
    rows: list[np.ndarray] = []
    names = ("input_ids", "input_mask", "segment_ids", "label_mask")
    for batch, (tags,) in inference_batches(network, decode_function(network), dataset, names, batch_size):
        mask = batch["label_mask"].astype(bool)
        rows.extend(tags[i][mask[i]] for i in range(len(tags)))
    return rows


class NerTask(FinetuneTask):
    """Records of tools/create_ner_data.py: dataset.json names the labels (``O`` = 0), the scheme
    and the metrics; ``SPLIT_sentences.jsonl`` holds each sentence's tokens, gold tags and rows."""

    name = "ner"
    data_tool = "tools/create_ner_data.py"

    def __init__(self, data_dir: str | os.PathLike, metric_mode: str = "default"):
        from .data.ner_data import load_ner_info

        super().__init__(data_dir, load_ner_info(Path(data_dir)))
        self.labels: list[str] = self.info["labels"]
        self.scheme: str = self.info["scheme"]
        self.metrics = list(self.info["metrics"])
        self.main_metric = self.info["main_metric"]
        self.metric_mode = metric_mode
        self.is_cluener = self.info.get("input_format") == "cluener"
        self._index: dict[str, list[dict]] = {}

    def summary(self) -> dict:
        return {"task": "ner", "num_labels": len(self.labels), "scheme": self.scheme,
                "metric_mode": self.metric_mode}

    def sentences(self, split: str) -> list[dict]:
        from .data.ner_data import read_sentence_index

        if split not in self._index:
            self._index[split] = read_sentence_index(self.data_dir / self.splits[split]["sentences_file"])
        return self._index[split]

    def build_network(self, config):
        from .training import BertTokenClassificationLoss

        return BertTokenClassificationLoss(config.model, len(self.labels), config.classifier_dropout,
                                           use_crf=config.use_crf, crf_seed=config.seed)

    def _dataset(self, split: str, config, **kwargs):
        from .data.dataset import create_finetune_dataset
        from .data.ner_data import record_columns

        seq = config.model.seq_length
        return create_finetune_dataset(self.file(split), kwargs.pop("batch_size", config.eval_batch_size), seq,
                                       columns=record_columns(seq), vocab_size=config.model.vocab_size, **kwargs)

    def train_dataset(self, config, epoch: int, validate: bool):
        return self._dataset(config.train_split, config, batch_size=config.batch_size, shuffle=True,
                             seed=config.seed + epoch, drop_remainder=True, validate=validate)

    def predict(self, network, split: str, config) -> list[list[str]]:
        """Predicted tags per sentence of ``split`` (windows merged)."""
        from .data.ner_data import merge_windows

        rows = predict_rows(network, self._dataset(split, config, shuffle=False, drop_remainder=False),
                            config.eval_batch_size)
        if len(rows) != self.examples(split):
            raise RuntimeError(f"decoded {len(rows)} rows of {self.file(split)} but dataset.json lists "
                               f"{self.examples(split)}")
        return [[self.labels[i] for i in ids] for ids in merge_windows(self.sentences(split), rows)]

    def evaluate(self, network, split: str, config) -> tuple[dict, list[list[str]]]:
        predicted = self.predict(network, split, config)
        gold = [entry["tags"] for entry in self.sentences(split)]
        return self.score(gold, predicted, split), predicted

    def score(self, gold: list[list[str]], predicted: list[list[str]], split: str = "") -> dict:
        """Entity precision/recall/F1 (micro) and per type, token accuracy, CLUENER's macro F1."""
        scheme = self.scheme if self.metric_mode == "strict" else None
        scores = ner_metrics.entity_scores(gold, predicted, mode=self.metric_mode, scheme=scheme)
        metrics: dict[str, Any] = {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}
        if "cluener_macro_f1" in self.metrics:
            entries = self.sentences(split)
            gold_entities = [ner_metrics.entity_strings(e["tokens"], e["tags"], self.scheme) for e in entries]
            pred_entities = [ner_metrics.entity_strings(e["tokens"], tags, self.scheme)
                             for e, tags in zip(entries, predicted)]
            metrics["cluener_macro_f1"] = ner_metrics.cluener_scores(gold_entities, pred_entities)["macro_f1"]
        metrics["token_accuracy"] = ner_metrics.token_accuracy(gold, predicted)
        for kind, values in scores["per_type"].items():
            metrics[f"{kind}_f1"] = values["f1"]
        metrics["examples"] = len(gold)
        return metrics

    def write_predictions(self, output: Path, split: str, predictions: list[list[str]]) -> Path:
        """``predictions_SPLIT.txt``: CoNLL columns ``token gold predicted`` (``token predicted``
        without gold), a blank line between sentences; for CLUENER input also
        ``cluener_predict_SPLIT.json`` in the submission format. Both atomically."""
        entries = self.sentences(split)
        path = Path(output) / f"predictions_{split}.txt"
        lines = []
        for entry, tags in zip(entries, predictions):
            gold = entry["tags"]
            for i, token in enumerate(entry["tokens"]):
                token = token if token.strip() else "_"  # keep the columns of a whitespace token
                lines.append(f"{token} {gold[i]} {tags[i]}" if gold is not None else f"{token} {tags[i]}")
            lines.append("")
        _write_atomic(path, "\n".join(lines))
        if self.is_cluener:
            rows = []
            for entry, tags in zip(entries, predictions):
                label: dict = {}
                text = entry.get("text", "".join(entry["tokens"]))
                for kind, start, end in tagging.get_chunks(tags, self.scheme):
                    label.setdefault(kind, {}).setdefault(text[start:end], []).append([start, end - 1])
                sentence_id = int(entry["id"]) if str(entry["id"]).isdigit() else entry["id"]
                rows.append(json.dumps({"id": sentence_id, "label": label}, ensure_ascii=False))
            _write_atomic(Path(output) / f"cluener_predict_{split}.json", "\n".join(rows) + "\n")
        return path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["NerTask", "decode_function", "predict_rows"]
