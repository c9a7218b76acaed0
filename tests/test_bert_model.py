"""BertModel cells at tiny scale, in GRAPH and PYNATIVE mode."""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np
import pytest

from src.bert_model import BertModel, relative_position_index, sinusoid_relative_table
from src.heads import BertForPreTraining, BertForSequenceClassification, gather_positions
from tests.conftest import tiny_config

B, S = 3, 7


def inputs(rng, vocab=99, batch=B, seq=S, pad_from=None):
    ids = rng.integers(1, vocab, (batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    if pad_from is not None:
        mask[1, pad_from:] = 0
        ids[1, pad_from:] = 0
    seg = np.zeros((batch, seq), np.int32)
    seg[:, seq // 2:] = 1
    return ids, mask, seg


def run(net, *arrays):
    return net(*[ms.Tensor(a) for a in arrays])


@pytest.mark.parametrize("relative", [False, True])
def test_shapes_and_hidden_states(mode, relative):
    cfg = tiny_config(use_relative_positions=relative, max_relative_position=3)
    net = BertModel(cfg, output_hidden_states=True)
    net.set_train(False)
    seq, pooled, states = run(net, *inputs(np.random.default_rng(0)))
    assert seq.shape == (B, S, 32) and pooled.shape == (B, 32) and seq.dtype == ms.float32
    assert len(states) == cfg.num_hidden_layers + 1
    np.testing.assert_array_equal(states[-1].asnumpy(), seq.asnumpy())


@pytest.mark.parametrize("relative", [False, True])
def test_padding_does_not_change_real_tokens(mode, relative):
    """Outputs at real positions are the same whether or not padding follows."""
    cfg = tiny_config(use_relative_positions=relative, max_relative_position=3)
    net = BertModel(cfg)
    net.set_train(False)
    ids, mask, seg = inputs(np.random.default_rng(1))
    short = run(net, ids[:, :4], mask[:, :4], seg[:, :4])[0].asnumpy()
    mask[:, 4:] = 0
    padded = run(net, ids, mask, seg)[0].asnumpy()
    np.testing.assert_allclose(padded[:, :4], short, atol=1e-5)


def test_float16_compute_close_to_float32(mode):
    rng = np.random.default_rng(2)
    data = inputs(rng)
    ms.set_seed(3)
    net32 = BertModel(tiny_config())
    ms.set_seed(3)
    net16 = BertModel(tiny_config(compute_type="float16"))
    for net in (net32, net16):
        net.set_train(False)
    a, b = run(net32, *data)[0].asnumpy(), run(net16, *data)[0].asnumpy()
    assert b.dtype == np.float32
    assert np.abs(a - b).max() < 2e-2


def test_float16_parameters(mode):
    net = BertModel(tiny_config(dtype="float16", compute_type="float16"))
    net.set_train(False)
    dtypes = {p.name: p.dtype for p in net.get_parameters()}
    assert dtypes["embeddings.word_embeddings.embedding_table"] == ms.float16
    assert dtypes["embeddings.LayerNorm.gamma"] == ms.float32
    seq, _ = run(net, *inputs(np.random.default_rng(4)))
    assert np.isfinite(seq.asnumpy()).all()


def test_dropout_only_in_training(mode):
    net = BertModel(tiny_config(hidden_dropout_prob=0.5))
    data = inputs(np.random.default_rng(5))
    net.set_train(False)
    a, b = run(net, *data)[0].asnumpy(), run(net, *data)[0].asnumpy()
    np.testing.assert_array_equal(a, b)
    net.set_train(True)
    assert not np.allclose(run(net, *data)[0].asnumpy(), a)


def test_relative_position_index_and_table():
    rel = relative_position_index(5, 2)
    assert rel[0].tolist() == [2, 3, 4, 4, 4] and rel[4].tolist() == [0, 0, 0, 1, 2]
    table = sinusoid_relative_table(2, 4)
    assert table.shape == (5, 4)
    p, i = 3, 1  # column 2i = 2 holds sin(p / 10000^(2i/d))
    assert math.isclose(table[p, 2], math.sin(p / 10000 ** (2 * i / 4)), rel_tol=1e-6)
    assert math.isclose(table[p, 3], math.cos(p / 10000 ** (2 * i / 4)), rel_tol=1e-6)


def test_learned_relative_table_is_a_parameter():
    names = [p.name for p in BertModel(tiny_config(use_relative_positions=True, relative_position_type="learned",
                                                   max_relative_position=3)).trainable_params()]
    assert "encoder.layer.0.attention.self.relative_positions_embeddings" in names
    names = [p.name for p in BertModel(tiny_config(use_relative_positions=True)).get_parameters()]
    assert not any("relative" in n for n in names) and not any("position_embeddings" in n for n in names)


def test_heads_shapes_and_names(mode):
    cfg = tiny_config()
    ids, mask, seg = inputs(np.random.default_rng(6))
    positions = np.array([[1, 2], [0, 0], [6, 3]], np.int32)
    net = BertForPreTraining(cfg)
    net.set_train(False)
    mlm, nsp = run(net, ids, mask, seg, positions)
    assert mlm.shape == (B, 2, 99) and nsp.shape == (B, 2)
    names = {p.name for p in net.get_parameters()}
    assert {"cls.predictions.bias", "cls.predictions.transform.LayerNorm.gamma", "cls.seq_relationship.weight",
            "bert.embeddings.word_embeddings.embedding_table"} <= names
    clf = BertForSequenceClassification(cfg, num_labels=3)
    clf.set_train(False)
    assert run(clf, ids, mask, seg).shape == (B, 3)


def test_mean_pooling_classifier(mode):
    """pooling="mean": logits = classifier(mean of the last layer over the real tokens); no pooler weights;
    tokens behind the mask change nothing; an unknown pooling is refused."""
    cfg = tiny_config()
    rng = np.random.default_rng(8)
    ids = rng.integers(5, 99, (2, 7)).astype(np.int32)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3], np.int32)
    seg = np.zeros((2, 7), np.int32)
    clf = BertForSequenceClassification(cfg, num_labels=3, pooling="mean")
    clf.set_train(False)
    assert not any("pooler" in p.name for p in clf.get_parameters())
    sequence, _ = clf.bert(*(ms.Tensor(a) for a in (ids, mask, seg)))
    sequence = sequence.asnumpy().astype(np.float64)
    mean = np.stack([sequence[0].mean(0), sequence[1, :4].mean(0)])
    weight, bias = clf.classifier.weight.asnumpy(), clf.classifier.bias.asnumpy()
    logits = run(clf, ids, mask, seg)
    np.testing.assert_allclose(logits, mean @ weight.T + bias, rtol=1e-4, atol=1e-6)
    other = ids.copy()
    other[1, 4:] = 7  # padding content
    np.testing.assert_allclose(run(clf, other, mask, seg), logits, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="pooling must be one of cls, mean, got 'max'"):
        BertForSequenceClassification(cfg, num_labels=3, pooling="max")


def test_gather_positions(mode):
    seq = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    out = gather_positions(ms.Tensor(seq), ms.Tensor(np.array([[3, 0], [1, 1]], np.int32))).asnumpy()
    np.testing.assert_array_equal(out, np.stack([seq[0, [3, 0]], seq[1, [1, 1]]]))
