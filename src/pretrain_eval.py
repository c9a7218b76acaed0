"""Evaluation of a pretraining network on held-out records: MLM accuracy, NSP accuracy, MLM
perplexity, and the two baselines to read them against: the unigram baseline (always predicting
the most frequent masked token) and the NSP majority class (always giving the more frequent
next-sentence label: create_pretraining_data makes more RandomNext than IsNext pairs, because a
pair whose A is the only segment at hand must take its B from another document)."""
from __future__ import annotations

import math
from collections import Counter
from typing import Optional

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from .heads import BertForPreTraining, pretraining_logits


class PretrainingPredictions(nn.Cell):
    """Per batch: MLM predicted ids and log-likelihood of the true ids [B, P], NSP predictions [B]."""

    def __init__(self, network: BertForPreTraining):
        super().__init__()
        self.network = network

    def construct(self, input_ids, input_mask, segment_ids, next_sentence_labels, masked_lm_positions,
                  masked_lm_ids, masked_lm_weights):
        mlm_logits, nsp_logits = pretraining_logits(self.network.bert, self.network.cls, input_ids, input_mask,
                                                    segment_ids, masked_lm_positions)
        log_probs = ops.log_softmax(mlm_logits, -1)
        true_log_prob = ops.gather_elements(log_probs, 2, masked_lm_ids.expand_dims(-1)).squeeze(-1)
        return mlm_logits.argmax(-1).astype(ms.int32), true_log_prob, nsp_logits.argmax(-1).astype(ms.int32)


def evaluate_pretraining(network: BertForPreTraining, dataset, max_batches: int = 0,
                         use_nsp: bool = True) -> dict:
    """Metrics over ``dataset`` (batches of the seven record columns); ``max_batches`` 0 = all.

    Returns:
        ``{"mlm_accuracy", "mlm_perplexity", "mlm_loss", "nsp_accuracy", "nsp_majority", "unigram_accuracy",
        "masked_tokens", "sequences"}``; ``nsp_accuracy`` and ``nsp_majority`` (the accuracy of always
        answering the more frequent label) are None without NSP.
    """
    was_training = network.training
    network.set_train(False)
    predictor = PretrainingPredictions(network)
    correct = total = nsp_correct = nsp_random = sequences = 0
    nll = 0.0
    labels: Counter = Counter()
    try:
        for index, batch in enumerate(dataset.create_tuple_iterator(num_epochs=1)):
            if max_batches and index >= max_batches:
                break
            mlm_pred, true_log_prob, nsp_pred = predictor(*batch)
            weights = batch[6].asnumpy() > 0
            ids = batch[5].asnumpy()
            correct += int(((mlm_pred.asnumpy() == ids) & weights).sum())
            total += int(weights.sum())
            nll -= float(true_log_prob.asnumpy()[weights].astype(np.float64).sum())
            labels.update(ids[weights].tolist())
            nsp_labels = batch[3].asnumpy().reshape(-1)  # 1: RandomNext
            nsp_correct += int((nsp_pred.asnumpy() == nsp_labels).sum())
            nsp_random += int(nsp_labels.sum())
            sequences += len(ids)
    finally:
        network.set_train(was_training)
    if not total:
        raise ValueError("the evaluation data has no masked tokens")
    loss = nll / total
    return {
        "mlm_accuracy": correct / total,
        "mlm_loss": loss,
        "mlm_perplexity": math.exp(min(loss, 700.0)),
        "nsp_accuracy": nsp_correct / sequences if use_nsp else None,
        "nsp_majority": max(nsp_random, sequences - nsp_random) / sequences if use_nsp else None,
        "unigram_accuracy": labels.most_common(1)[0][1] / total,
        "masked_tokens": total,
        "sequences": sequences,
    }


def format_metrics(metrics: dict, prefix: Optional[str] = None) -> str:
    parts = [f"MLM accuracy {metrics['mlm_accuracy']:.4f} (unigram baseline {metrics['unigram_accuracy']:.4f})",
             f"MLM perplexity {metrics['mlm_perplexity']:.2f}"]
    if metrics.get("nsp_accuracy") is not None:
        majority = metrics.get("nsp_majority")
        majority = f" (majority class {majority:.4f})" if majority is not None else ""
        parts.append(f"NSP accuracy {metrics['nsp_accuracy']:.4f}{majority}")
    parts.append(f"on {metrics['sequences']:,} sequences, {metrics['masked_tokens']:,} masked tokens")
    return (f"{prefix}: " if prefix else "") + ", ".join(parts)
