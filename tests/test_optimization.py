"""Learning-rate schedule, Lamb, AdamWeightDecay and Momentum against NumPy references; state save/restore."""
from __future__ import annotations

import dataclasses
import re

import mindspore as ms
import numpy as np
import pytest
from mindspore import Parameter, Tensor, nn, ops

from src.config import AdamWeightDecayConfig, LambConfig, MomentumConfig, OptimizerConfig
from src.heads import BertForPreTraining
from src.optimization import (AdamW, Lamb, WarmupPolynomialDecayLR, build_optimizer, decay_filter, learning_rate_at,
                              schedule_from_config)
from tests.conftest import tiny_config


# --------------------------------------------------------------------------------------
# NumPy references (float64), written from the formulas, not from the code under test
# --------------------------------------------------------------------------------------
def reference_lr(t, lr, end, warmup, decay, power):
    if t < warmup:
        return lr * t / warmup
    return (lr - end) * (1 - min(t, decay) / decay) ** power + end


def reference_decayed(name):
    return re.search("layernorm|bias", name, re.IGNORECASE) is None


def reference_lamb(weights, grads_per_step, lrs, beta1, beta2, eps, wd, adapt_undecayed=True):
    """LAMB with bias correction, decoupled weight decay and the layer-wise trust ratio."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs), start=1):
        for name in w:
            g = grads[name].astype(np.float64)
            m[name] = beta1 * m[name] + (1 - beta1) * g
            v[name] = beta2 * v[name] + (1 - beta2) * g * g
            update = (m[name] / (1 - beta1 ** t)) / (np.sqrt(v[name] / (1 - beta2 ** t)) + eps)
            decayed = reference_decayed(name)
            if decayed:
                update = update + wd * w[name]
            ratio = 1.0
            if decayed or adapt_undecayed:
                w_norm, u_norm = np.linalg.norm(w[name]), np.linalg.norm(update)
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            w[name] = w[name] - lr * ratio * update
    return w, m, v


def reference_adam_weight_decay(weights, grads_per_step, lrs, beta1, beta2, eps, wd):
    """MindSpore's AdamWeightDecay: no bias correction, ``w -= lr * (m / (sqrt(v) + eps) + wd * w)``."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    for grads, lr in zip(grads_per_step, lrs):
        for name in w:
            g = grads[name].astype(np.float64)
            m[name] = beta1 * m[name] + (1 - beta1) * g
            v[name] = beta2 * v[name] + (1 - beta2) * g * g
            update = m[name] / (np.sqrt(v[name]) + eps)
            if reference_decayed(name):
                update = update + wd * w[name]
            w[name] = w[name] - lr * update
    return w


def reference_momentum(weights, grads_per_step, lrs, momentum):
    """``v = momentum * v + g; w -= lr * v``."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    acc = {k: np.zeros_like(v) for k, v in w.items()}
    for grads, lr in zip(grads_per_step, lrs):
        for name in w:
            acc[name] = momentum * acc[name] + grads[name]
            w[name] = w[name] - lr * acc[name]
    return w


# --------------------------------------------------------------------------------------
# A small "model": named parameters of several shapes, and random gradients
# --------------------------------------------------------------------------------------
SHAPES = {
    "bert.embeddings.word_embeddings.embedding_table": (11, 4),
    "bert.embeddings.LayerNorm.gamma": (4,),
    "bert.embeddings.LayerNorm.beta": (4,),  # zero weight, no decay: trust ratio 1 on the first step
    "bert.encoder.layer.0.attention.self.query.weight": (4, 4),
    "bert.encoder.layer.0.attention.self.query.bias": (4,),
    "bert.pooler.dense.weight": (4, 4),  # zero weight with decay: trust ratio 1 on the first step
    "cls.predictions.bias": (11,),
    "cls.conv.weight": (2, 3, 2),
    "unused.weight": (3,),  # zero gradient: pure weight decay, scaled by the trust ratio
    "unused.bias": (3,),  # zero gradient, no decay: update 0, trust ratio 1, unchanged
}
ZERO_WEIGHTS = {"bert.embeddings.LayerNorm.beta", "bert.pooler.dense.weight"}
ZERO_GRADS = {"unused.weight", "unused.bias"}


def initial_weights(seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in SHAPES.items():
        if name in ZERO_WEIGHTS:
            out[name] = np.zeros(shape, np.float32)
        elif name.endswith("gamma"):
            out[name] = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            out[name] = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    return out


def random_grads(steps, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        grads = {}
        for i, (name, shape) in enumerate(SHAPES.items()):
            scale = 0.0 if name in ZERO_GRADS else 10.0 ** (-(i % 4))
            grads[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
        out.append(grads)
    return out


def make_params(weights):
    return [Parameter(Tensor(w.copy()), name=name) for name, w in weights.items()]


def run_steps(optimizer, grads_per_step):
    for grads in grads_per_step:
        optimizer(tuple(Tensor(grads[p.name]) for p in optimizer.parameters))


def assert_weights(params, expected, atol=1e-6):
    for p in params:
        np.testing.assert_allclose(p.asnumpy(), expected[p.name], rtol=0, atol=atol, err_msg=p.name)


# --------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------
SCHEDULES = [  # (lr, end, warmup, decay, power)
    (3e-4, 0.0, 10, 100, 2.0),
    (1e-2, 1e-4, 3, 20, 5.0),
    (2e-5, 0.0, 0, 50, 1.0),
    (1e-3, 1e-5, 8, 5, 2.0),  # warmup longer than the decay
]


@pytest.mark.parametrize("args", SCHEDULES)
def test_schedule_matches_formula(mode, args):
    lr, end, warmup, decay, power = args
    schedule = WarmupPolynomialDecayLR(*args)
    steps = sorted({0, 1, max(warmup - 1, 0), warmup, (warmup + decay) // 2, decay - 1, decay, decay + 7})
    for t in steps:
        expected = reference_lr(t, *args)
        assert learning_rate_at(t, *args) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert schedule.value_at(t) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        for step in (Tensor([t], ms.int32), Tensor(t, ms.int32)):  # optimizers pass shape [1]
            value = schedule(step)
            assert value.dtype == ms.float32 and value.shape == step.shape
            np.testing.assert_allclose(value.asnumpy(), expected, rtol=2e-6, atol=1e-12, err_msg=f"step {t}")
    # the decay counts from step 0, not from the end of the warmup (Google BERT and the zoo alike)
    assert learning_rate_at(warmup, *args) == pytest.approx((lr - end) * (1 - min(warmup, decay) / decay) ** power
                                                            + end)
    assert learning_rate_at(decay + 100, *args) == pytest.approx(end)


def test_schedule_from_config_decay_steps_zero_means_total():
    config = LambConfig(learning_rate=1e-3, end_learning_rate=0.0, warmup_steps=2, decay_steps=0, power=1.0)
    schedule = schedule_from_config(config, total_steps=10)
    assert schedule.decay_steps == 10 and schedule.value_at(5) == pytest.approx(5e-4)
    config.decay_steps = 4
    assert schedule_from_config(config, total_steps=10).decay_steps == 4


# --------------------------------------------------------------------------------------
# Weight-decay filter
# --------------------------------------------------------------------------------------
def test_decay_filter():
    decayed = ["bert.encoder.layer.0.attention.self.query.weight", "bert.embeddings.word_embeddings.embedding_table",
               "bert.embeddings.relative_positions_embeddings", "cls.seq_relationship.weight"]
    excluded = ["bert.embeddings.LayerNorm.gamma", "bert.encoder.layer.1.output.LayerNorm.beta", "cls.predictions.bias",
                "bert.encoder.layer.0.attention.self.query.bias", "x.layernorm.weight", "x.BIAS"]
    assert all(decay_filter(n) for n in decayed)
    assert not any(decay_filter(n) for n in excluded)
    assert decay_filter(Parameter(Tensor(np.ones(2, np.float32)), name="a.weight"))
    assert not decay_filter(Parameter(Tensor(np.ones(2, np.float32)), name="a.LayerNorm.gamma"))


# --------------------------------------------------------------------------------------
# Lamb
# --------------------------------------------------------------------------------------
LAMB = dict(beta1=0.9, beta2=0.99, eps=1e-6, wd=0.1)
LAMB_SCHEDULE = (0.05, 0.001, 2, 6, 2.0)
STEPS = 6


@pytest.mark.parametrize("variant", ["direct", "build_optimizer", "float_lr", "no_adapt_undecayed"])
def test_lamb_matches_numpy(mode, variant):
    weights, grads = initial_weights(), random_grads(STEPS)
    params = make_params(weights)
    lrs = [reference_lr(t, *LAMB_SCHEDULE) for t in range(STEPS)]
    schedule = WarmupPolynomialDecayLR(*LAMB_SCHEDULE)
    adapt_undecayed = variant != "no_adapt_undecayed"
    if variant == "build_optimizer":
        lr, end, warmup, decay, power = LAMB_SCHEDULE
        config = OptimizerConfig(optimizer="lamb", lamb=LambConfig(
            learning_rate=lr, end_learning_rate=end, warmup_steps=warmup, decay_steps=0, power=power,
            beta1=LAMB["beta1"], beta2=LAMB["beta2"], eps=LAMB["eps"], weight_decay=LAMB["wd"]))
        optimizer = build_optimizer(config, params, total_steps=decay)
    elif variant == "float_lr":
        lrs = [0.02] * STEPS
        optimizer = Lamb(params, 0.02, LAMB["beta1"], LAMB["beta2"], LAMB["eps"], LAMB["wd"])
    else:
        optimizer = Lamb(params, schedule, LAMB["beta1"], LAMB["beta2"], LAMB["eps"], LAMB["wd"],
                         adapt_undecayed=adapt_undecayed)
    assert isinstance(optimizer, Lamb)
    assert list(optimizer.decay_flags) == [reference_decayed(p.name) for p in optimizer.parameters]

    run_steps(optimizer, grads)

    expected, m, v = reference_lamb(weights, grads, lrs, LAMB["beta1"], LAMB["beta2"], LAMB["eps"], LAMB["wd"],
                                    adapt_undecayed)
    assert_weights(params, expected)
    state = dict(optimizer.parameters_and_names())
    for name in SHAPES:
        np.testing.assert_allclose(state[f"lamb_m.{name}"].asnumpy(), m[name], rtol=0, atol=1e-6)
        np.testing.assert_allclose(state[f"lamb_v.{name}"].asnumpy(), v[name], rtol=0, atol=1e-6)
    assert state["global_step"].asnumpy().tolist() == [STEPS]
    np.testing.assert_array_equal(params[-1].asnumpy(), weights["unused.bias"])  # zero gradient, no decay


def test_lamb_first_step_zero_weight_trust_ratio_one(mode):
    """A zero weight moves by exactly lr * update on its first step (trust ratio 1), a nonzero one by lr * ||w||."""
    w = {"a.weight": np.zeros((3, 2), np.float32), "b.weight": np.full((3, 2), 2.0, np.float32)}
    g = {"a.weight": np.full((3, 2), 0.5, np.float32), "b.weight": np.full((3, 2), -0.25, np.float32)}
    params = make_params(w)
    optimizer = Lamb(params, 0.1, beta1=0.9, beta2=0.999, eps=1e-12, weight_decay=0.0)
    run_steps(optimizer, [g])
    # first step: m_hat = g, v_hat = g^2, update = sign(g)
    np.testing.assert_allclose(params[0].asnumpy(), -0.1 * np.ones((3, 2)), atol=1e-6)
    np.testing.assert_allclose(params[1].asnumpy(), 2.0 + 0.1 * 2.0, atol=1e-6)  # ratio ||w||/||u|| = 2


def test_adamw_fused_primitive_and_elementary_update_agree(mode):
    """Float32 parameters take the fused AdamWeightDecay primitive with the bias corrections folded
    in; a float16 parameter sends the optimizer down Lamb's elementary update. Same weights."""
    weights, grads = initial_weights(), random_grads(3)
    half = "bert.embeddings.word_embeddings.embedding_table"
    weights[half] = weights[half].astype(np.float16).astype(np.float32)
    fused_params = make_params(weights)
    fused = AdamW(fused_params, 0.05, eps=1e-6, weight_decay=0.1)
    mixed_params = [Parameter(Tensor(w.astype(np.float16) if n == half else w), name=n) for n, w in weights.items()]
    elementary = AdamW(mixed_params, 0.05, eps=1e-6, weight_decay=0.1)
    assert fused.fused and not elementary.fused
    run_steps(fused, grads)
    for g in grads:
        elementary(tuple(Tensor(g[p.name].astype(np.float16) if p.name == half else g[p.name])
                         for p in mixed_params))
    expected = {p.name: p.asnumpy() for p in fused_params}
    np.testing.assert_allclose(mixed_params[0].asnumpy().astype(np.float32), expected[half], rtol=2e-3, atol=2e-3)
    assert_weights(mixed_params[1:], expected, atol=1e-6)


def test_lamb_float16_parameters_keep_float32_moments(mode):
    weights, grads = initial_weights(), random_grads(3)
    half = "bert.embeddings.word_embeddings.embedding_table"
    params = [Parameter(Tensor(w.astype(np.float16) if n == half else w), name=n) for n, w in weights.items()]
    optimizer = Lamb(params, 0.05, LAMB["beta1"], LAMB["beta2"], LAMB["eps"], LAMB["wd"])
    state = dict(optimizer.parameters_and_names())
    assert state[f"lamb_v.{half}"].dtype == ms.float32 and params[0].dtype == ms.float16
    for g in grads:
        optimizer(tuple(Tensor(g[p.name].astype(np.float16) if p.name == half else g[p.name]) for p in params))
    weights[half] = weights[half].astype(np.float16).astype(np.float32)
    expected, _, _ = reference_lamb(weights, grads, [0.05] * 3, LAMB["beta1"], LAMB["beta2"], LAMB["eps"], LAMB["wd"])
    assert params[0].dtype == ms.float16
    np.testing.assert_allclose(params[0].asnumpy().astype(np.float32), expected[half], rtol=2e-3, atol=2e-3)
    assert_weights(params[1:], expected, atol=1e-6)


# --------------------------------------------------------------------------------------
# AdamWeightDecay and Momentum through build_optimizer
# --------------------------------------------------------------------------------------
def test_adam_weight_decay_matches_numpy(mode):
    weights, grads = initial_weights(), random_grads(4)
    params = make_params(weights)
    schedule = (0.01, 0.0, 1, 8, 5.0)
    config = OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(
        learning_rate=schedule[0], end_learning_rate=schedule[1], warmup_steps=schedule[2], decay_steps=schedule[3],
        power=schedule[4], beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.5))
    optimizer = build_optimizer(config, params, total_steps=1000)
    assert isinstance(optimizer, nn.AdamWeightDecay)
    assert [p.name for p in optimizer.parameters] == list(SHAPES)  # order_params keeps the given order
    assert list(optimizer.decay_flags) == [reference_decayed(n) for n in SHAPES]
    run_steps(optimizer, grads)
    lrs = [reference_lr(t, *schedule) for t in range(4)]
    expected = reference_adam_weight_decay(weights, grads, lrs, 0.9, 0.999, 1e-6, 0.5)
    assert_weights(params, expected)
    # weight decay really is excluded: LayerNorm.gamma moved only by the Adam step
    no_decay = reference_adam_weight_decay(weights, grads, lrs, 0.9, 0.999, 1e-6, 0.0)
    name = "bert.embeddings.LayerNorm.gamma"
    np.testing.assert_allclose(expected[name], no_decay[name], atol=0)


def test_bias_corrected_adamw_matches_torch_adamw(mode):
    """adamw.bias_correction: the same weights as torch.optim.AdamW (HuggingFace's optimizer) with
    the same schedule and weight-decay groups."""
    torch = pytest.importorskip("torch")
    weights, grads = initial_weights(), random_grads(4)
    params = make_params(weights)
    schedule = (0.01, 0.0, 1, 8, 1.0)
    config = OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(
        learning_rate=schedule[0], end_learning_rate=schedule[1], warmup_steps=schedule[2], decay_steps=schedule[3],
        power=schedule[4], beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.5, bias_correction=True))
    optimizer = build_optimizer(config, params, total_steps=1000)
    assert isinstance(optimizer, AdamW)
    assert {f"adam_m.{n}" for n in SHAPES} <= {n for n, _ in optimizer.parameters_and_names()}
    run_steps(optimizer, grads)

    reference = {n: torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)) for n, w in weights.items()}
    groups = [{"params": [reference[n] for n in SHAPES if reference_decayed(n)], "weight_decay": 0.5},
              {"params": [reference[n] for n in SHAPES if not reference_decayed(n)], "weight_decay": 0.0}]
    torch_adamw = torch.optim.AdamW(groups, lr=1.0, betas=(0.9, 0.999), eps=1e-6)
    for t, step_grads in enumerate(grads):
        for group in torch_adamw.param_groups:
            group["lr"] = reference_lr(t, *schedule)
        for n, p in reference.items():
            p.grad = torch.tensor(step_grads[n], dtype=torch.float64)
        torch_adamw.step()
    assert_weights(params, {n: p.detach().numpy() for n, p in reference.items()}, atol=2e-6)
    # the first update of nn.AdamWeightDecay is (1 - b1) / sqrt(1 - b2) = 3.16x the corrected one
    first = {}
    for bias_correction in (True, False):
        one_step = make_params(weights)
        run_steps(build_optimizer(OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(
            learning_rate=0.01, warmup_steps=0, decay_steps=100, eps=1e-12, weight_decay=0.0,
            bias_correction=bias_correction)), one_step, total_steps=100), grads[:1])
        first[bias_correction] = {p.name: np.abs(p.asnumpy() - weights[p.name]) for p in one_step}
    for name in ("bert.embeddings.LayerNorm.gamma", "bert.encoder.layer.0.attention.self.query.weight"):
        moved = first[True][name]
        np.testing.assert_allclose(first[False][name][moved > 0], 0.1 / np.sqrt(0.001) * moved[moved > 0], rtol=1e-3)


def test_momentum_matches_numpy(mode):
    weights, grads = initial_weights(), random_grads(2)
    params = make_params(weights)
    config = OptimizerConfig(optimizer="momentum", momentum=MomentumConfig(
        learning_rate=0.1, end_learning_rate=0.0, warmup_steps=0, decay_steps=4, power=1.0, momentum=0.9))
    optimizer = build_optimizer(config, params, total_steps=4)
    assert isinstance(optimizer, nn.Momentum)
    run_steps(optimizer, grads[:1])
    assert_weights(params, reference_momentum(weights, grads[:1], [0.1], 0.9))
    run_steps(optimizer, grads[1:])
    assert_weights(params, reference_momentum(weights, grads, [0.1, 0.075], 0.9))


# --------------------------------------------------------------------------------------
# State: names, save, restore, identical continuation
# --------------------------------------------------------------------------------------
OPTIMIZER_CONFIGS = {
    "lamb": (OptimizerConfig(optimizer="lamb", lamb=LambConfig(learning_rate=0.01, warmup_steps=2)),
             ("lamb_m.", "lamb_v.")),
    "adamw": (OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(learning_rate=0.01, warmup_steps=2)),
              ("adam_m.", "adam_v.")),
    "adamw_bias_corrected": (OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(
        learning_rate=0.01, warmup_steps=2, bias_correction=True)), ("adam_m.", "adam_v.")),
    "momentum": (OptimizerConfig(optimizer="momentum", momentum=MomentumConfig(learning_rate=0.01)), ("moments.",)),
}


@pytest.mark.parametrize("name", list(OPTIMIZER_CONFIGS))
def test_state_save_restore_continues_identically(mode, tmp_path, name):
    config, prefixes = OPTIMIZER_CONFIGS[name]
    grads = random_grads(5)
    params = make_params(initial_weights(0))
    optimizer = build_optimizer(config, params, total_steps=20)
    state_names = {n for n, _ in optimizer.parameters_and_names()}
    assert "global_step" in state_names
    assert {f"{prefix}{n}" for prefix in prefixes for n in SHAPES} <= state_names
    run_steps(optimizer, grads[:2])
    ms.save_checkpoint(optimizer, str(tmp_path / "state.ckpt"))
    run_steps(optimizer, grads[2:])

    # a fresh optimizer over differently initialised weights, restored from the checkpoint
    params2 = make_params(initial_weights(7))
    optimizer2 = build_optimizer(config, params2, total_steps=20)
    not_loaded, _ = ms.load_param_into_net(optimizer2, ms.load_checkpoint(str(tmp_path / "state.ckpt")))
    assert not not_loaded
    assert optimizer2.global_step.asnumpy().tolist() == [2]
    run_steps(optimizer2, grads[2:])
    for p, p2 in zip(params, params2):
        np.testing.assert_array_equal(p2.asnumpy(), p.asnumpy(), err_msg=p.name)
    state2 = dict(optimizer2.parameters_and_names())
    for n, value in optimizer.parameters_and_names():
        np.testing.assert_array_equal(state2[n].asnumpy(), value.asnumpy(), err_msg=n)


# --------------------------------------------------------------------------------------
# A real network: every optimizer compiles inside a GRAPH-mode train step, and resumes
# --------------------------------------------------------------------------------------
class _PretrainingLoss(nn.Cell):
    def __init__(self, network):
        super().__init__()
        self.network = network

    def construct(self, input_ids, input_mask, segment_ids, positions, mlm_ids, nsp_labels):
        mlm_logits, nsp_logits = self.network(input_ids, input_mask, segment_ids, positions)
        mlm = ops.cross_entropy(mlm_logits.reshape(-1, mlm_logits.shape[-1]), mlm_ids.reshape(-1))
        return mlm + ops.cross_entropy(nsp_logits, nsp_labels)


def _bert_train_cell(optimizer_name, seed=0):
    ms.set_seed(seed)
    network = _PretrainingLoss(BertForPreTraining(tiny_config()))
    optimizer = build_optimizer(OPTIMIZER_CONFIGS[optimizer_name][0], network.trainable_params(), total_steps=10)
    cell = nn.TrainOneStepCell(network, optimizer)
    cell.set_train()
    return cell


def _bert_batch(seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 99, (2, 7)).astype(np.int32)
    return [Tensor(ids), Tensor(np.ones((2, 7), np.int32)), Tensor(np.zeros((2, 7), np.int32)),
            Tensor(np.array([[1, 3], [2, 5]], np.int32)), Tensor(rng.integers(1, 99, (2, 2)).astype(np.int32)),
            Tensor(np.array([0, 1], np.int32))]


@pytest.mark.parametrize("name", list(OPTIMIZER_CONFIGS))
def test_bert_train_step_graph_mode_and_resume(tmp_path, name):
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        cell = _bert_train_cell(name)
        before = {p.name: p.asnumpy().copy() for p in cell.network.trainable_params()}
        for step in range(3):  # warmup 2: step 0 has lr 0
            loss = cell(*_bert_batch(step))
            assert np.isfinite(loss.asnumpy())
        after = {p.name: p.asnumpy() for p in cell.network.trainable_params()}
        assert sum(not np.array_equal(before[n], after[n]) for n in before) > len(before) // 2
        assert cell.optimizer.global_step.asnumpy().tolist() == [3]
        if name != "lamb":
            return
        # resume from a checkpoint of the whole train cell (network + optimizer state)
        ms.save_checkpoint(cell, str(tmp_path / "train.ckpt"))
        expected = [cell(*_bert_batch(step)).asnumpy() for step in (3, 4)]
        resumed = _bert_train_cell(name, seed=1)
        not_loaded, _ = ms.load_param_into_net(resumed, ms.load_checkpoint(str(tmp_path / "train.ckpt")))
        assert not not_loaded
        got = [resumed(*_bert_batch(step)).asnumpy() for step in (3, 4)]
        np.testing.assert_array_equal(got, expected)
        for p, p2 in zip(cell.network.trainable_params(), resumed.network.trainable_params()):
            np.testing.assert_array_equal(p2.asnumpy(), p.asnumpy(), err_msg=p.name)
    finally:
        ms.set_context(mode=previous)


# --------------------------------------------------------------------------------------
# Errors name the offending values
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=-1e-3), r"learning_rate .*-0\.001"),
    (dict(end_learning_rate=-1.0), r"end_learning_rate .*-1\.0"),
    (dict(warmup_steps=-5), r"warmup_steps .*-5"),
    (dict(decay_steps=0), r"decay_steps .*>= 1, got 0"),
    (dict(power=-2.0), r"power .*-2\.0"),
])
def test_schedule_errors(kwargs, message):
    args = dict(learning_rate=1e-3, end_learning_rate=0.0, warmup_steps=10, decay_steps=100, power=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        WarmupPolynomialDecayLR(**args)
    with pytest.raises(ValueError, match=message):
        learning_rate_at(3, **args)


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=-0.1), r"learning_rate .*-0\.1"),
    (dict(beta1=1.0), r"beta1 must be in \[0, 1\), got 1\.0"),
    (dict(beta2=-0.1), r"beta2 must be in \[0, 1\), got -0\.1"),
    (dict(eps=0.0), r"eps must be .*> 0, got 0\.0"),
    (dict(weight_decay=-0.01), r"weight_decay .*-0\.01"),
])
def test_lamb_errors(kwargs, message):
    args = dict(learning_rate=0.1, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Lamb(make_params({"a.weight": np.ones(2, np.float32)}), **args)


def _unchecked(section, **values):
    """A schedule section with values its own validation refuses: build_optimizer checks them again."""
    for key, value in values.items():
        setattr(section, key, value)
    return section


@pytest.mark.parametrize("config, total_steps, message", [
    (OptimizerConfig(optimizer="lamb", lamb=_unchecked(LambConfig(), learning_rate=-3e-4)), 10,
     r"lamb schedule: learning_rate .*-0\.0003"),
    (OptimizerConfig(optimizer="lamb", lamb=LambConfig(beta1=1.5)), 10, r"lamb\.beta1 .*1\.5"),
    (OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(beta2=1.0)), 10, r"adamw\.beta2 .*1\.0"),
    (OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(weight_decay=-1.0)), 10,
     r"adamw\.weight_decay .*-1\.0"),
    (OptimizerConfig(optimizer="momentum", momentum=MomentumConfig(momentum=-0.9)), 10, r"momentum .*-0\.9"),
    (OptimizerConfig(optimizer="lamb", lamb=LambConfig(decay_steps=0)), 0, r"total_steps .*got 0"),
    (OptimizerConfig(optimizer="lamb", lamb=_unchecked(LambConfig(), warmup_steps=-1)), 10, r"warmup_steps .*-1"),
])
def test_build_optimizer_errors(config, total_steps, message):
    with pytest.raises(ValueError, match=message):
        build_optimizer(config, make_params({"a.weight": np.ones(2, np.float32)}), total_steps)


def test_build_optimizer_rejects_duplicate_names():
    params = make_params({"a.weight": np.ones(2, np.float32)}) * 2
    with pytest.raises(ValueError, match="a.weight"):
        build_optimizer(OptimizerConfig(), params, total_steps=10)
