"""The train step (loss scaling, accumulation), the pretraining loss and checkpoints for resume."""
from __future__ import annotations

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor, nn

from src.checkpoint import CheckpointError
from src.checkpoint_manager import CheckpointManager
from src import fused_ops
from src.heads import pretraining_logits
from src.training import BertClassificationLoss, BertPretrainingLoss, TrainStep, classification_loss
from tests.conftest import tiny_config


class Toy(nn.Cell):
    """loss = mean((x · w)²): an inf in x makes every gradient non-finite."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([0.5, -0.25, 1.0], np.float32)), name="w")

    def construct(self, x):
        loss = ((x * self.w).sum(-1) ** 2).mean()
        return loss, (loss,)


def test_overflow_skips_the_step_and_halves_the_scale_then_training_continues(mode):
    net = Toy()
    step = TrainStep(net, nn.SGD(net.trainable_params(), 0.1), loss_scale=1024.0, scale_factor=2, scale_window=2,
                     clip_norm=None)
    good = Tensor(np.ones((2, 3), np.float32))
    bad = Tensor(np.array([[1.0, np.inf, 1.0], [1.0, 1.0, 1.0]], np.float32))
    _, _, overflow, scale, applied = step(good)
    assert not overflow and float(scale) == 1024.0 and applied
    before = net.w.asnumpy().copy()
    _, _, overflow, _, _ = step(bad)
    assert bool(overflow)
    np.testing.assert_array_equal(net.w.asnumpy(), before)  # skipped
    assert float(step.scaler.scale_value.asnumpy()) == 512.0  # halved
    _, _, overflow, scale, _ = step(good)
    assert not overflow and float(scale) == 512.0
    assert not np.array_equal(net.w.asnumpy(), before)  # training continues
    step(good)  # second clean step in the window: the scale doubles
    assert float(step.scaler.scale_value.asnumpy()) == 1024.0


def test_scale_never_drops_below_one(mode):
    net = Toy()
    step = TrainStep(net, nn.SGD(net.trainable_params(), 0.1), loss_scale=2.0, scale_window=1000, clip_norm=None)
    bad = Tensor(np.full((2, 3), np.nan, np.float32))
    for _ in range(4):
        step(bad)
    assert float(step.scaler.scale_value.asnumpy()) == 1.0


def test_unscaled_gradients_equal_the_plain_ones(mode):
    """With a huge scale the applied update is the same as without scaling."""
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    weights = []
    for scale in (None, 2.0 ** 20):
        net = Toy()
        TrainStep(net, nn.SGD(net.trainable_params(), 0.1), loss_scale=scale, clip_norm=None)(x)
        weights.append(net.w.asnumpy())
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-6)


@pytest.mark.parametrize("scale", [None, 2.0 ** 32])
@pytest.mark.parametrize("clip", [0.05, 100.0])
def test_unscaling_and_clipping_match_numpy(mode, scale, clip):
    """One SGD step (lr 1) applies g * clip / max(|g|, clip), with g the unscaled gradient."""
    x = np.random.default_rng(4).standard_normal((4, 3)).astype(np.float32)
    net = Toy()
    w0 = net.w.asnumpy().astype(np.float64)
    TrainStep(net, nn.SGD(net.trainable_params(), 1.0), loss_scale=scale, clip_norm=clip)(Tensor(x))
    grad = (2 * (x @ w0)[:, None] * x).mean(0)  # d mean((x . w)^2) / dw
    grad *= clip / max(np.linalg.norm(grad), clip)
    np.testing.assert_allclose(net.w.asnumpy(), w0 - grad, rtol=1e-5, atol=1e-7)


def test_overflow_is_detected_with_clipping_on(mode):
    net = Toy()
    step = TrainStep(net, nn.SGD(net.trainable_params(), 0.1), loss_scale=1024.0, clip_norm=1.0)
    before = net.w.asnumpy().copy()
    _, _, overflow, _, applied = step(Tensor(np.array([[1.0, np.nan, 1.0]], np.float32)))
    assert bool(overflow) and bool(applied)
    np.testing.assert_array_equal(net.w.asnumpy(), before)
    assert float(step.scaler.scale_value.asnumpy()) == 512.0


def test_classification_loss_matches_numpy(mode):
    rng = np.random.default_rng(5)
    ids = Tensor(rng.integers(1, 99, (4, 7)).astype(np.int32))
    mask, seg = Tensor(np.ones((4, 7), np.int32)), Tensor(np.zeros((4, 7), np.int32))
    labels = np.array([0, 2, 1, 2], np.int32)
    net = BertClassificationLoss(tiny_config(), num_labels=3)
    net.set_train(False)
    loss, aux = net(ids, mask, seg, Tensor(labels))
    assert aux == ()
    logits = super(BertClassificationLoss, net).construct(ids, mask, seg).asnumpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(loss.asnumpy(), -log_probs[np.arange(4), labels].mean(), rtol=1e-5)
    column = classification_loss(Tensor(logits.astype(np.float32)), Tensor(labels[:, None]))  # labels [B, 1]
    np.testing.assert_allclose(column.asnumpy(), -log_probs[np.arange(4), labels].mean(), rtol=1e-5)
    regression = BertClassificationLoss(tiny_config(), num_labels=1)
    regression.set_train(False)
    targets = rng.standard_normal(4).astype(np.float32)
    loss, _ = regression(ids, mask, seg, Tensor(targets))
    predictions = super(BertClassificationLoss, regression).construct(ids, mask, seg).asnumpy()[:, 0]
    np.testing.assert_allclose(loss.asnumpy(), ((predictions - targets) ** 2).mean(), rtol=1e-5)


def test_span_loss_is_the_mean_start_end_cross_entropy_over_real_positions(mode):
    from src.training import BertQuestionAnsweringLoss, span_loss

    rng = np.random.default_rng(6)
    ids = Tensor(rng.integers(1, 99, (3, 7)).astype(np.int32))
    mask = np.ones((3, 7), np.int32)
    mask[1, 5:] = 0
    seg = Tensor(np.zeros((3, 7), np.int32))
    starts, ends = np.array([2, 0, 4], np.int32), np.array([3, 0, 6], np.int32)
    net = BertQuestionAnsweringLoss(tiny_config())
    net.set_train(False)
    loss, aux = net(ids, Tensor(mask), seg, Tensor(starts), Tensor(ends[:, None]))  # [B] and [B, 1] both work
    start_logits, end_logits = (x.asnumpy().astype(np.float64) for x in
                                super(BertQuestionAnsweringLoss, net).construct(ids, Tensor(mask), seg))
    assert aux == () and start_logits.shape == end_logits.shape == (3, 7)

    def ce(logits, positions):
        logits = np.where(mask == 1, logits, -np.inf)
        log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        return -log_probs[np.arange(3), positions].mean()

    np.testing.assert_allclose(loss.asnumpy(), (ce(start_logits, starts) + ce(end_logits, ends)) / 2, rtol=1e-5)
    # padding gets no probability: its logits do not move the loss
    moved = start_logits.copy()
    moved[1, 5:] += 50.0
    again = span_loss(Tensor(moved.astype(np.float32)), Tensor(end_logits.astype(np.float32)), Tensor(starts),
                      Tensor(ends), Tensor(mask))
    np.testing.assert_allclose(again.asnumpy(), loss.asnumpy(), rtol=1e-5)
    # it trains: two steps of the composable train step lower the loss on the same batch
    net.set_train(True)
    step = TrainStep(net, nn.Adam(net.trainable_params(), learning_rate=1e-2), loss_scale=None)
    batch_ = (ids, Tensor(mask), seg, Tensor(starts), Tensor(ends))
    first = float(step(*batch_)[0].asnumpy())
    for _ in range(3):
        last = float(step(*batch_)[0].asnumpy())
    assert np.isfinite(first) and last < first


def batch(rng, b, s=7, p=2):
    """Records with exactly p masked positions each, so micro-batch means average to the full mean."""
    return [rng.integers(5, 99, (b, s)).astype(np.int32), np.ones((b, s), np.int32),
            (np.arange(s)[None, :] >= s // 2).repeat(b, 0).astype(np.int32), rng.integers(0, 2, (b, 1)).astype(np.int32),
            np.sort(rng.permuted(np.tile(np.arange(1, s - 1), (b, 1)), axis=1)[:, :p], axis=1).astype(np.int32),
            rng.integers(5, 99, (b, p)).astype(np.int32), np.ones((b, p), np.float32)]


def test_accumulation_equals_one_big_batch(mode):
    """N micro-batches of B give the same update as one batch of N x B (dropout off)."""
    rng = np.random.default_rng(1)
    data = batch(rng, 8)
    results = []
    for accumulation, micro in ((1, 8), (4, 2)):
        ms.set_seed(7)
        net = BertPretrainingLoss(tiny_config())
        net.set_train(True)
        step = TrainStep(net, nn.AdamWeightDecay(net.trainable_params(), 1e-3), loss_scale=1024.0,
                         accumulation_steps=accumulation, clip_norm=1.0)
        applied = []
        for start in range(0, 8, micro):
            out = step(*[Tensor(a[start:start + micro]) for a in data])
            applied.append(bool(out[4]))
        assert applied == [False] * (accumulation - 1) + [True]
        results.append({p.name: p.asnumpy().copy() for p in net.get_parameters()})
    for name, value in results[0].items():
        np.testing.assert_allclose(results[1][name], value, atol=1e-5, rtol=0, err_msg=name)


def log_softmax(x):
    return x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))


@pytest.mark.parametrize("path", ["fused", "standard"])
def test_pretraining_loss_is_the_weighted_cross_entropy_of_the_heads_logits(mode, path, monkeypatch):
    """mlm = Σ w·CE / (Σ w + 1e-5) of BertForPreTraining's MLM logits (padding positions, weight 0,
    count for nothing), nsp the mean CE of its NSP logits, loss their sum; on the fused kernel and on
    the standard operators."""
    if path == "standard":
        monkeypatch.setattr(fused_ops, "_resolved", True)
        monkeypatch.setattr(fused_ops, "_library", None)
    rng = np.random.default_rng(2)
    data = batch(rng, 3)
    data[5][1, 1] = 0  # a padding slot: id 0, weight 0
    data[6][1, 1] = 0.0
    net = BertPretrainingLoss(tiny_config())
    net.set_train(False)
    assert net.cross_entropy.fused == (path == "fused" and fused_ops.kernel_library() is not None)
    inputs = [Tensor(a) for a in data]
    loss, (mlm, nsp) = net(*inputs)
    mlm_logits, nsp_logits = (x.asnumpy().astype(np.float64)
                              for x in pretraining_logits(net.bert, net.cls, *inputs[:3], inputs[4]))
    ids, weights = data[5], data[6]
    nll = -np.take_along_axis(log_softmax(mlm_logits), ids[..., None], -1)[..., 0]
    np.testing.assert_allclose(mlm.asnumpy(), (nll * weights).sum() / (weights.sum() + 1e-5), rtol=1e-5)
    labels = data[3][:, 0]
    np.testing.assert_allclose(nsp.asnumpy(), -log_softmax(nsp_logits)[np.arange(3), labels].mean(), rtol=1e-5)
    assert float(loss.asnumpy()) == pytest.approx(float(mlm.asnumpy()) + float(nsp.asnumpy()), rel=1e-6)


def test_no_nsp_loss_for_line_by_line_data(mode):
    net = BertPretrainingLoss(tiny_config(), use_nsp=False)
    net.set_train(False)
    loss, (mlm, nsp) = net(*[Tensor(a) for a in batch(np.random.default_rng(3), 2)])
    assert float(nsp.asnumpy()) == 0.0 and float(loss.asnumpy()) == pytest.approx(float(mlm.asnumpy()))


def test_checkpoint_manager_keeps_the_last_k_and_restores_everything(tmp_path, mode):
    net = BertPretrainingLoss(tiny_config())
    step = TrainStep(net, nn.AdamWeightDecay(net.trainable_params(), 1e-3), accumulation_steps=2)
    data = [Tensor(a) for a in batch(np.random.default_rng(4), 2)]
    for _ in range(3):
        step(*data)
    manager = CheckpointManager(tmp_path, keep=2, prefix="pretrain")
    for s in (1, 2, 3):
        manager.save(step.state(), s, batches=s * 2, epoch=0)
    assert [p.name for p in manager.checkpoints()] == ["pretrain-00000002.ckpt", "pretrain-00000003.ckpt"]
    saved = {p.name: p.asnumpy().copy() for p in step.state()}
    assert any(n.startswith("adam_m.") for n in saved) and "loss_scale.scale_value" in saved
    assert any(n.startswith("accu_grads.") for n in saved) and "train_step.micro_step" in saved

    fresh_net = BertPretrainingLoss(tiny_config())
    fresh = TrainStep(fresh_net, nn.AdamWeightDecay(fresh_net.trainable_params(), 1e-3), accumulation_steps=2)
    meta = manager.restore(manager.latest(), fresh.state())
    assert meta == {"step": 3, "batches": 6, "epoch": 0}
    for p in fresh.state():
        np.testing.assert_array_equal(p.asnumpy(), saved[p.name], err_msg=p.name)
    # both continue identically
    a, b = step(*data), fresh(*data)
    assert float(a[0].asnumpy()) == float(b[0].asnumpy())


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    net = BertPretrainingLoss(tiny_config())
    step = TrainStep(net, nn.AdamWeightDecay(net.trainable_params(), 1e-3))
    bad = tmp_path / "pretrain-00000005.ckpt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot resume from .*pretrain-00000005.ckpt: not a readable"):
        CheckpointManager.restore(bad, step.state())
    other = BertPretrainingLoss(tiny_config(hidden_size=16, num_attention_heads=2))
    other_step = TrainStep(other, nn.AdamWeightDecay(other.trainable_params(), 1e-3))
    path = CheckpointManager(tmp_path / "o").save(other_step.state(), 1, 1, 0)
    with pytest.raises(CheckpointError, match=r"has shape \(99, 16\) there but \(99, 32\) in this run"):
        CheckpointManager.restore(path, step.state())
