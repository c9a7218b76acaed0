"""src/pretrain_eval.py against a NumPy computation from the network's own logits (tiny config)."""
from __future__ import annotations

import math

import mindspore as ms
import mindspore.dataset as ds
import numpy as np
import pytest

from conftest import tiny_config
from src.heads import BertForPreTraining
from src.pretrain_eval import evaluate_pretraining, format_metrics

B, S, P, V = 13, 7, 3, 99


def pretraining_batches(rng: np.random.Generator, rows: int, batch_size: int):
    """The seven record columns for ``rows`` random sequences, batched; 1 in 4 masked slots is padding."""
    lengths = rng.integers(4, S + 1, rows)
    input_mask = (np.arange(S)[None, :] < lengths[:, None]).astype(np.int32)
    columns = {
        "input_ids": (rng.integers(5, V, (rows, S)) * input_mask).astype(np.int32),
        "input_mask": input_mask,
        "segment_ids": ((np.arange(S)[None, :] >= lengths[:, None] // 2) * input_mask).astype(np.int32),
        "next_sentence_labels": (rng.random((rows, 1)) < 0.7).astype(np.int32),  # 1 (RandomNext) is the majority
        "masked_lm_positions": np.stack([rng.choice(np.arange(1, n), P, replace=False)
                                         for n in lengths]).astype(np.int32),
        # a skewed id distribution, so that the unigram baseline is well above 1/V
        "masked_lm_ids": np.where(rng.random((rows, P)) < 0.3, 7, rng.integers(5, V, (rows, P))).astype(np.int32),
        "masked_lm_weights": (rng.random((rows, P)) < 0.75).astype(np.float32),
    }
    columns["masked_lm_weights"][:, 0] = 1.0
    dataset = ds.NumpySlicesDataset(columns, column_names=list(columns), shuffle=False)
    return columns, dataset.batch(batch_size, drop_remainder=False)


def reference_metrics(network: BertForPreTraining, c: dict) -> dict:
    mlm_logits, nsp_logits = network(*(ms.Tensor(c[k]) for k in ("input_ids", "input_mask", "segment_ids",
                                                                 "masked_lm_positions")))
    mlm_logits, nsp_logits = mlm_logits.asnumpy().astype(np.float64), nsp_logits.asnumpy()
    log_probs = mlm_logits - mlm_logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    w = c["masked_lm_weights"] > 0
    ids = c["masked_lm_ids"]
    true_log_prob = np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
    labels = c["next_sentence_labels"].reshape(-1)
    loss = -true_log_prob[w].mean()
    return {
        "mlm_accuracy": (mlm_logits.argmax(-1) == ids)[w].mean(),
        "mlm_loss": loss,
        "mlm_perplexity": math.exp(loss),
        "nsp_accuracy": (nsp_logits.argmax(-1) == labels).mean(),
        "nsp_majority": max(labels.mean(), 1 - labels.mean()),
        "unigram_accuracy": np.bincount(ids[w]).max() / w.sum(),
        "masked_tokens": int(w.sum()),
        "sequences": len(labels),
    }


def test_evaluate_pretraining_matches_numpy(mode):
    ms.set_seed(0)
    network = BertForPreTraining(tiny_config())
    network.set_train(False)
    columns, batches = pretraining_batches(np.random.default_rng(0), rows=3 * B + 5, batch_size=B)  # last batch partial
    metrics = evaluate_pretraining(network, batches)
    expected = reference_metrics(network, columns)
    assert set(metrics) == set(expected)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert expected["nsp_majority"] > 0.6 and expected["unigram_accuracy"] > 0.2  # the baselines are not trivial
    line = format_metrics(metrics, "held-out")
    assert line.startswith(f"held-out: MLM accuracy {metrics['mlm_accuracy']:.4f} (unigram baseline ")
    assert f"NSP accuracy {metrics['nsp_accuracy']:.4f} (majority class {metrics['nsp_majority']:.4f})" in line
    assert network.training is False


def test_evaluate_pretraining_without_nsp_and_limited_batches(mode):
    ms.set_seed(0)
    network = BertForPreTraining(tiny_config())
    network.set_train(True)  # restored afterwards
    _, batches = pretraining_batches(np.random.default_rng(1), rows=3 * B, batch_size=B)
    metrics = evaluate_pretraining(network, batches, max_batches=2, use_nsp=False)
    assert metrics["sequences"] == 2 * B
    assert metrics["nsp_accuracy"] is None and metrics["nsp_majority"] is None
    assert "NSP" not in format_metrics(metrics)
    assert network.training is True
