"""Fused CPU kernels (src/fused_ops.py): forward and gradients against NumPy formulas and against the
standard-operator path, dropout masks, seeds, and the fallback when the kernels cannot be built."""
from __future__ import annotations

import logging
import shutil

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, ops

from src import fused_ops
from src.bert_model import relative_position_index
from src.fused_ops import (BiasGelu, DropoutAddLayerNorm, LayerNormDropout, MaskedSoftmaxDropout,
                           RelativeSelfAttention, RowMatMul, SelfAttention, SoftmaxCrossEntropy, SumOfSquares)

EPS = 1e-12

pytestmark = pytest.mark.skipif(fused_ops.kernel_library() is None, reason="fused CPU kernels unavailable")


@pytest.fixture
def standard_ops(monkeypatch):
    """Cells built inside this fixture use the standard-operator path."""
    monkeypatch.setattr(fused_ops, "_resolved", True)
    monkeypatch.setattr(fused_ops, "_library", None)


def t(a):
    return Tensor(np.asarray(a, np.float32))


def grads(cell, inputs, sens):
    """(output, input gradients) of ``cell`` for output cotangent ``sens`` from one call (one dropout
    mask), in the current mode."""
    def loss(*xs):
        out = cell(*xs)
        return (out * sens).sum(), out

    run = ms.value_and_grad(loss, tuple(range(len(inputs))), has_aux=True)
    if ms.get_context("mode") == ms.GRAPH_MODE:
        run = ms.jit(run)
    (_, out), gs = run(*[t(x) for x in inputs])
    return out.asnumpy(), [g.asnumpy() for g in gs]


# --- NumPy references (float64) -------------------------------------------------------------------
def erf(x):
    from scipy.special import erf as _erf

    return _erf(x)


def gelu_ref(u):
    return 0.5 * u * (1 + erf(u / np.sqrt(2)))


def gelu_grad_ref(u):
    return 0.5 * (1 + erf(u / np.sqrt(2))) + u * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)


def layer_norm_ref(z, gamma, beta):
    mean = z.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(z.var(-1, keepdims=True) + EPS)
    return (z - mean) * rstd * gamma + beta, (z - mean) * rstd, rstd


def layer_norm_grad_ref(dy, xhat, rstd, gamma):
    """d(input), d(gamma), d(beta) of LayerNorm over the last axis."""
    g = dy * gamma
    dz = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    axes = tuple(range(dy.ndim - 1))
    return dz, (dy * xhat).sum(axes), dy.sum(axes)


def softmax_ref(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def softmax_grad_ref(dp, p):
    return p * (dp - (dp * p).sum(-1, keepdims=True))


def attention_ref(qkv, bias, mask_bias, heads, scale, keep=None):
    """context [B, S, H] and the pieces the gradient needs; keep: 0/1 [B, N, S, S] or None."""
    b, s, h3 = qkv.shape
    h, d = h3 // 3, h3 // 3 // heads
    x = (qkv + bias).reshape(b, s, 3, heads, d).transpose(2, 0, 3, 1, 4)  # (3, B, N, S, D)
    q, k, v = x
    p = softmax_ref(q @ k.swapaxes(-1, -2) * scale + mask_bias)
    factor = 1.0 if keep is None else keep
    pd = p * factor
    context = (pd @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
    return context, (q, k, v, p, pd, factor)


def attention_grad_ref(dcontext, parts, scale):
    q, k, v, p, pd, factor = parts
    b, n, s, d = q.shape
    dc = dcontext.reshape(b, s, n, d).transpose(0, 2, 1, 3)
    dv = pd.swapaxes(-1, -2) @ dc
    dp = (dc @ v.swapaxes(-1, -2)) * factor
    dscores = softmax_grad_ref(dp, p) * scale
    dq, dk = dscores @ k, dscores.swapaxes(-1, -2) @ q
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(b, s, 3 * n * d)
    return dqkv, dqkv.sum((0, 1))


def relative_attention_ref(qkv, bias, mask_bias, table, heads, scale, keep=None):
    """NEZHA's attention, context [B, S, H] and the pieces the gradient needs: scores (Q Kᵀ + Q T[rel]ᵀ)
    * scale + mask_bias, context P V + P T[rel] with rel = clip(j - i, -K, K) + K; keep as attention_ref."""
    b, s, h3 = qkv.shape
    h, d = h3 // 3, h3 // 3 // heads
    index = relative_position_index(s, (table.shape[0] - 1) // 2)
    rel = table[index]  # (S, S, D)
    q, k, v = (qkv + bias).reshape(b, s, 3, heads, d).transpose(2, 0, 3, 1, 4)  # each (B, N, S, D)
    p = softmax_ref((q @ k.swapaxes(-1, -2) + np.einsum("bnid,ijd->bnij", q, rel)) * scale + mask_bias)
    factor = 1.0 if keep is None else keep
    pd = p * factor
    context = (pd @ v + np.einsum("bnij,ijd->bnid", pd, rel)).transpose(0, 2, 1, 3).reshape(b, s, h)
    return context, (q, k, v, rel, index, p, pd, factor)


def relative_attention_grad_ref(dcontext, parts, scale, rows):
    """dqkv, dbias and dtable [rows, D] of relative_attention_ref."""
    q, k, v, rel, index, p, pd, factor = parts
    b, n, s, d = q.shape
    dc = dcontext.reshape(b, s, n, d).transpose(0, 2, 1, 3)
    dv = pd.swapaxes(-1, -2) @ dc
    dp = (dc @ v.swapaxes(-1, -2) + np.einsum("bnid,ijd->bnij", dc, rel)) * factor
    dscores = softmax_grad_ref(dp, p) * scale  # d(Q Kᵀ + Q T[rel]ᵀ)
    dq = dscores @ k + np.einsum("bnij,ijd->bnid", dscores, rel)
    dk = dscores.swapaxes(-1, -2) @ q
    drel = np.einsum("bnij,bnid->ijd", dscores, q) + np.einsum("bnij,bnid->ijd", pd, dc)  # (S, S, D)
    dtable = np.zeros((rows, d))
    np.add.at(dtable, index, drel)
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(b, s, 3 * n * d)
    return dqkv, dqkv.sum((0, 1)), dtable


def relative_inputs(rng, b, s, heads, h, k_max):
    """qkv, bias, mask_bias (a hole in row 0, padding in row 1), table and a context cotangent."""
    qkv, bias = rng.standard_normal((b, s, 3 * h)), rng.standard_normal(3 * h)
    table, dy = rng.standard_normal((2 * k_max + 1, h // heads)), rng.standard_normal((b, s, h))
    mask_bias = np.zeros((b, 1, 1, s))
    mask_bias[0, ..., s // 2] = -10000.0
    if b > 1:
        mask_bias[1, ..., s // 4 + 1:] = -10000.0  # padding: the kernel skips keys past the last kept one
        qkv[1, s // 4 + 1:] = 0.0  # RowMatMul leaves the padding rows 0
    return qkv, bias, mask_bias, table, dy


# --- forward and gradients, dropout off ---------------------------------------------------------
@pytest.mark.parametrize("path", ["fused", "standard"])
def test_bias_gelu(mode, path, request):
    if path == "standard":
        request.getfixturevalue("standard_ops")
    rng = np.random.default_rng(0)
    x, bias, dy = rng.standard_normal((3, 5, 37)) * 3, rng.standard_normal(37), rng.standard_normal((3, 5, 37))
    cell = BiasGelu()
    assert cell.fused == (path == "fused")
    out, (dx, dbias) = grads(cell, (x, bias), t(dy))
    u = x + bias
    np.testing.assert_allclose(out, gelu_ref(u), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dy * gelu_grad_ref(u), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dbias, (dy * gelu_grad_ref(u)).sum((0, 1)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", ["fused", "standard"])
def test_dropout_add_layer_norm(mode, path, request):
    if path == "standard":
        request.getfixturevalue("standard_ops")
    rng = np.random.default_rng(1)
    shape = (2, 7, 32)
    x, res, dy = rng.standard_normal(shape), rng.standard_normal(shape), rng.standard_normal(shape)
    bias, gamma, beta = rng.standard_normal(32), 1 + 0.1 * rng.standard_normal(32), rng.standard_normal(32)
    cell = DropoutAddLayerNorm(0.1, EPS)
    cell.set_train(False)
    assert cell.fused == (path == "fused")
    out, (dx, dbias, dres, dgamma, dbeta) = grads(cell, (x, bias, res, gamma, beta), t(dy))
    y, xhat, rstd = layer_norm_ref(x + bias + res, gamma, beta)
    np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-5)
    dz, dg, db = layer_norm_grad_ref(dy, xhat, rstd, gamma)
    for got, want in ((dx, dz), (dres, dz), (dbias, dz.sum((0, 1))), (dgamma, dg), (dbeta, db)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", ["fused", "standard"])
def test_layer_norm_dropout(mode, path, request):
    if path == "standard":
        request.getfixturevalue("standard_ops")
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 7, 32)) * 2 + 1, rng.standard_normal((2, 7, 32))
    gamma, beta = 1 + 0.1 * rng.standard_normal(32), rng.standard_normal(32)
    cell = LayerNormDropout(0.1, EPS)
    cell.set_train(False)
    out, (dx, dgamma, dbeta) = grads(cell, (x, gamma, beta), t(dy))
    y, xhat, rstd = layer_norm_ref(x, gamma, beta)
    np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-5)
    for got, want in zip((dx, dgamma, dbeta), layer_norm_grad_ref(dy, xhat, rstd, gamma)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", ["fused", "standard"])
def test_masked_softmax_dropout(mode, path, request):
    if path == "standard":
        request.getfixturevalue("standard_ops")
    rng = np.random.default_rng(3)
    scores, dy = rng.standard_normal((2, 3, 5, 7)) * 4, rng.standard_normal((2, 3, 5, 7))
    mask_bias = np.zeros((2, 1, 1, 7))
    mask_bias[1, ..., 4:] = -10000.0
    cell = MaskedSoftmaxDropout(0.1, 0.25)
    cell.set_train(False)
    out, (dscores, dmask) = grads(cell, (scores, mask_bias), t(dy))
    p = softmax_ref(scores * 0.25 + mask_bias)
    np.testing.assert_allclose(out, p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dscores, softmax_grad_ref(dy, p) * 0.25, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("path", ["fused", "standard"])
@pytest.mark.parametrize("seq", [7, 40])
def test_self_attention(mode, path, seq, request):
    if path == "standard":
        request.getfixturevalue("standard_ops")
    rng = np.random.default_rng(4)
    b, heads, h = 2, 4, 32
    qkv, bias, dy = rng.standard_normal((b, seq, 3 * h)), rng.standard_normal(3 * h), rng.standard_normal((b, seq, h))
    mask_bias = np.zeros((b, 1, 1, seq))
    mask_bias[0, ..., seq // 2] = -10000.0  # a hole
    mask_bias[1, ..., seq // 4 + 1:] = -10000.0  # padding: the kernel skips keys past the last kept one
    scale = 1 / np.sqrt(h // heads)
    cell = SelfAttention(heads, 0.1, scale)
    cell.set_train(False)
    out, (dqkv, dbias, _) = grads(cell, (qkv, bias, mask_bias), t(dy))
    context, parts = attention_ref(qkv, bias, mask_bias, heads, scale)
    np.testing.assert_allclose(out, context, rtol=1e-4, atol=1e-5)
    want_dqkv, want_dbias = attention_grad_ref(dy, parts, scale)
    np.testing.assert_allclose(dqkv, want_dqkv, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dbias, want_dbias, rtol=1e-4, atol=1e-4)


# (batch, sequence, heads, hidden, K): S below and above the 32-wide tile, K below and above S, D 8 and 40
RELATIVE_SHAPES = [(2, 7, 4, 32, 3), (2, 7, 4, 32, 64), (2, 40, 4, 32, 5), (3, 70, 2, 80, 40), (2, 33, 4, 32, 1)]


@pytest.mark.parametrize("path", ["fused", "standard"])
@pytest.mark.parametrize("shape", RELATIVE_SHAPES, ids=lambda x: "b{}-s{}-n{}-h{}-k{}".format(*x))
def test_relative_self_attention(mode, path, shape, request):
    """Context and the gradients of qkv, bias and the table against the NumPy formula, on both paths."""
    if path == "standard":
        request.getfixturevalue("standard_ops")
    b, seq, heads, h, k_max = shape
    qkv, bias, mask_bias, table, dy = relative_inputs(np.random.default_rng(14), *shape)
    scale = 1 / np.sqrt(h // heads)
    cell = RelativeSelfAttention(heads, k_max, 0.1, scale)
    cell.set_train(False)
    assert cell.fused == (path == "fused")
    out, (dqkv, dbias, _, dtable) = grads(cell, (qkv, bias, mask_bias, table), t(dy))
    context, parts = relative_attention_ref(qkv, bias, mask_bias, table, heads, scale)
    np.testing.assert_allclose(out, context, rtol=1e-4, atol=1e-5)
    want_dqkv, want_dbias, want_dtable = relative_attention_grad_ref(dy, parts, scale, 2 * k_max + 1)
    np.testing.assert_allclose(dqkv, want_dqkv, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dbias, want_dbias, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dtable, want_dtable, rtol=1e-4, atol=1e-4)


def test_relative_self_attention_without_table_gradient(mode):
    """table_grad=False (a constant table): the same context and dqkv, and a zero table gradient."""
    shape = (2, 40, 4, 32, 5)
    qkv, bias, mask_bias, table, dy = relative_inputs(np.random.default_rng(15), *shape)
    outs = []
    for table_grad in (True, False):
        cell = RelativeSelfAttention(4, 5, 0.0, 0.25, table_grad=table_grad)
        outs.append(grads(cell, (qkv, bias, mask_bias, table), t(dy)))
    (out, (dqkv, dbias, _, dtable)), (out_c, (dqkv_c, dbias_c, _, dtable_c)) = outs
    assert np.abs(dtable).max() > 0 and not dtable_c.any()
    np.testing.assert_array_equal(out_c, out)
    np.testing.assert_array_equal(dqkv_c, dqkv)
    np.testing.assert_array_equal(dbias_c, dbias)


# --- dropout ------------------------------------------------------------------------------------
def test_attention_dropout_mask_is_used_in_both_passes(mode):
    """Training: the kernel's mask drops ~p of the probabilities, scales the rest by 1/(1-p), and the
    gradient goes through the same mask."""
    rng = np.random.default_rng(5)
    b, seq, heads, h = 2, 40, 4, 32
    qkv, bias, dy = rng.standard_normal((b, seq, 3 * h)), rng.standard_normal(3 * h), rng.standard_normal((b, seq, h))
    mask_bias = np.zeros((b, 1, 1, seq), np.float32)
    mask_bias[1, ..., 9:] = -10000.0
    scale = 1 / np.sqrt(h // heads)
    cell = SelfAttention(heads, 0.3, scale)
    keep, seed = t([0.7]), Tensor([12345], ms.int32)
    grad_all = ops.GradOperation(get_all=True, sens_param=True)

    def context(x, bias_):
        return cell.op(x, bias_, Tensor(mask_bias), cell.heads, cell.scale, keep, seed)[0]

    def run(x, bias_):
        return cell.op(x, bias_, Tensor(mask_bias), cell.heads, cell.scale, keep, seed), grad_all(context)(x, bias_,
                                                                                                           t(dy))

    if ms.get_context("mode") == ms.GRAPH_MODE:
        run = ms.jit(run)
    (context, probs, mask), (dqkv, dbias) = run(t(qkv), t(bias))
    mask = mask.asnumpy()
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert abs(1 - mask.mean() - 0.3) < 0.02, mask.mean()
    keep = mask / 0.7
    want, parts = attention_ref(qkv, bias, mask_bias, heads, scale, keep)
    np.testing.assert_allclose(probs.asnumpy(), parts[3], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(context.asnumpy(), want, rtol=1e-4, atol=1e-5)
    want_dqkv, want_dbias = attention_grad_ref(dy, parts, scale)
    np.testing.assert_allclose(dqkv.asnumpy(), want_dqkv, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dbias.asnumpy(), want_dbias, rtol=1e-4, atol=1e-4)


def test_relative_attention_dropout_mask_is_masked_softmax_dropouts(mode):
    """Training: the kernel draws MaskedSoftmaxDropout's (and SelfAttention's) mask for the same seed, and
    the context and every gradient go through it."""
    rng = np.random.default_rng(16)
    b, seq, heads, h, k_max = 2, 37, 4, 32, 6
    qkv, bias, mask_bias, table, dy = relative_inputs(rng, b, seq, heads, h, k_max)
    scale = 1 / np.sqrt(h // heads)
    cell = RelativeSelfAttention(heads, k_max, 0.3, scale)
    keep, seed = t([0.7]), Tensor([12345], ms.int32)
    grad_all = ops.GradOperation(get_all=True, sens_param=True)
    softmax_dropout, attention = MaskedSoftmaxDropout(0.3, scale), SelfAttention(heads, 0.3, scale)
    scores = t(rng.standard_normal((b, heads, seq, seq)))

    def context(x, bias_, table_):
        return cell.op(x, bias_, t(mask_bias), table_, cell.heads, cell.scale, keep, seed, cell.table_grad)[0]

    def run(x, bias_, table_):
        outs = cell.op(x, bias_, t(mask_bias), table_, cell.heads, cell.scale, keep, seed, cell.table_grad)
        other = softmax_dropout.op(scores, t(mask_bias), softmax_dropout.scale, keep, seed)[2]
        plain = attention.op(x, bias_, t(mask_bias), attention.heads, attention.scale, keep, seed)[2]
        return outs, other, plain, grad_all(context)(x, bias_, table_, t(dy))

    if ms.get_context("mode") == ms.GRAPH_MODE:
        run = ms.jit(run)
    (out, probs, mask), other, plain, (dqkv, dbias, dtable) = run(t(qkv), t(bias), t(table))
    mask = mask.asnumpy()
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert abs(1 - mask.mean() - 0.3) < 0.02, mask.mean()
    np.testing.assert_array_equal(mask, other.asnumpy())
    np.testing.assert_array_equal(mask, plain.asnumpy())
    want, parts = relative_attention_ref(qkv, bias, mask_bias, table, heads, scale, mask / 0.7)
    np.testing.assert_allclose(probs.asnumpy(), parts[5], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.asnumpy(), want, rtol=1e-4, atol=1e-5)
    want_dqkv, want_dbias, want_dtable = relative_attention_grad_ref(dy, parts, scale, 2 * k_max + 1)
    np.testing.assert_allclose(dqkv.asnumpy(), want_dqkv, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dbias.asnumpy(), want_dbias, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dtable.asnumpy(), want_dtable, rtol=1e-4, atol=1e-4)


def test_hidden_dropout_mask_and_gradient(mode):
    rng = np.random.default_rng(6)
    shape = (4, 16, 32)
    x, res, dy = rng.standard_normal(shape), rng.standard_normal(shape), rng.standard_normal(shape)
    bias, gamma, beta = rng.standard_normal(32), 1 + 0.1 * rng.standard_normal(32), rng.standard_normal(32)
    cell = DropoutAddLayerNorm(0.5, EPS)
    keep, seed = t([0.5]), Tensor([777], ms.int32)
    grad_all = ops.GradOperation(get_all=True, sens_param=True)

    def output(x_, bias_, res_, gamma_, beta_):
        return cell.op(x_, bias_, res_, gamma_, beta_, cell.eps, keep, seed)[0]

    def run(x_, bias_, res_, gamma_, beta_):
        outs = cell.op(x_, bias_, res_, gamma_, beta_, cell.eps, keep, seed)
        return outs, grad_all(output)(x_, bias_, res_, gamma_, beta_, t(dy))

    if ms.get_context("mode") == ms.GRAPH_MODE:
        run = ms.jit(run)
    (y, z, _, _, mask), (dx, dbias, dres, _, _) = run(*[t(a) for a in (x, bias, res, gamma, beta)])
    mask = mask.asnumpy().astype(np.float64)
    assert abs(mask.mean() - 0.5) < 0.05
    z_want = (x + bias) * mask * 2 + res
    np.testing.assert_allclose(z.asnumpy(), z_want, rtol=1e-5, atol=1e-5)
    y_want, xhat, rstd = layer_norm_ref(z_want, gamma, beta)
    np.testing.assert_allclose(y.asnumpy(), y_want, rtol=1e-4, atol=1e-4)
    dz = layer_norm_grad_ref(dy, xhat, rstd, gamma)[0]
    np.testing.assert_allclose(dres.asnumpy(), dz, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx.asnumpy(), dz * mask * 2, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dbias.asnumpy(), (dz * mask * 2).sum((0, 1)), rtol=1e-4, atol=1e-4)


def test_embedding_dropout_mask_and_gradient(mode):
    rng = np.random.default_rng(7)
    x, dy = rng.standard_normal((4, 16, 32)), rng.standard_normal((4, 16, 32))
    gamma, beta = 1 + 0.1 * rng.standard_normal(32), rng.standard_normal(32)
    cell = LayerNormDropout(0.25, EPS)
    cell.set_train(True)
    out, (dx, dgamma, dbeta) = grads(cell, (x, gamma, beta), t(dy))
    y, xhat, rstd = layer_norm_ref(x, gamma, beta)
    mask = out != 0  # LayerNorm outputs are never exactly 0 here
    assert abs(1 - mask.mean() - 0.25) < 0.03
    np.testing.assert_allclose(out[mask], (y / 0.75)[mask], rtol=1e-4, atol=1e-5)
    d_norm = dy * mask / 0.75
    for got, want in zip((dx, dgamma, dbeta), layer_norm_grad_ref(d_norm, xhat, rstd, gamma)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_masks_follow_the_global_seed_and_the_dropout_stream_and_change_every_call(mode):
    x = Tensor(np.ones((8, 64, 64), np.float32))
    mask_bias = Tensor(np.zeros((8, 1, 1, 64), np.float32))

    def masks():
        cell = MaskedSoftmaxDropout(0.5, 1.0)
        cell.set_train(True)
        run = ms.jit(cell) if ms.get_context("mode") == ms.GRAPH_MODE else cell
        return [run(x, mask_bias).asnumpy() != 0 for _ in range(2)]

    ms.set_seed(11)
    fused_ops.reset_dropout_rng()
    first, second = masks()
    ms.set_seed(11)
    fused_ops.reset_dropout_rng()
    again, _ = masks()
    ms.set_seed(12)
    other, _ = masks()
    assert (first != other).mean() > 0.4
    np.testing.assert_array_equal(first, again)
    assert (first != second).mean() > 0.4


def test_plain_dropout_uses_its_mask_in_both_passes(mode):
    cell = fused_ops.Dropout(0.5)
    cell.set_train(True)
    x, dy = np.full((64, 64), 3.0), np.ones((64, 64))
    out, rows = grads(cell, (x,), t(dy))  # one input: its gradient comes back as one tensor (its rows here)
    dx = np.stack(rows)
    assert set(np.unique(out)) == {0.0, 6.0} and 0.4 < (out == 0).mean() < 0.6
    np.testing.assert_array_equal(dx, (out != 0) * 2.0)
    cell.set_train(False)
    np.testing.assert_array_equal(cell(t(x)).asnumpy(), x)


def test_eval_mode_and_zero_probability_have_no_dropout(mode):
    rng = np.random.default_rng(8)
    scores = Tensor(rng.standard_normal((2, 2, 4, 4)).astype(np.float32))
    mask_bias = Tensor(np.zeros((2, 1, 1, 4), np.float32))
    for prob, train in ((0.5, False), (0.0, True)):
        cell = MaskedSoftmaxDropout(prob, 1.0)
        cell.set_train(train)
        np.testing.assert_allclose(cell(scores, mask_bias).asnumpy(), softmax_ref(scores.asnumpy()), rtol=1e-5,
                                   atol=1e-6)


def test_bad_dropout_probability_is_an_error():
    with pytest.raises(ValueError, match="got 1.0"):
        MaskedSoftmaxDropout(1.0, 1.0)


# --- softmax cross-entropy (the masked-LM loss) ------------------------------------------------
@pytest.mark.parametrize("path", ["fused", "standard"])
def test_softmax_cross_entropy(mode, path, request):
    """nll = logsumexp(x + b) - (x + b)[label]; dx = dnll (softmax - onehot); db sums dx over the rows.
    Rows of large logits (no overflow), labels at both ends, and more rows than one thread's block."""
    if path == "standard":
        request.getfixturevalue("standard_ops")
    rng = np.random.default_rng(14)
    n, v = 37, 1001
    x, bias, dnll = rng.standard_normal((n, v)) * 4, rng.standard_normal(v), rng.standard_normal(n)
    x[3] += 80.0
    labels = rng.integers(0, v, n)
    labels[:2] = [0, v - 1]
    cell = SoftmaxCrossEntropy()
    assert cell.fused == (path == "fused")

    def loss(x_, b_):
        out = cell(x_, b_, Tensor(labels.astype(np.int32)))
        return (out * t(dnll)).sum(), out

    run = ms.value_and_grad(loss, (0, 1), has_aux=True)
    if ms.get_context("mode") == ms.GRAPH_MODE:
        run = ms.jit(run)
    (_, out), (dx, db) = run(t(x), t(bias))
    z = x + bias
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    np.testing.assert_allclose(out.asnumpy(), lse - z[np.arange(n), labels], rtol=1e-5, atol=1e-4)
    want = np.exp(z - lse[:, None])
    want[np.arange(n), labels] -= 1.0
    want *= dnll[:, None]
    np.testing.assert_allclose(dx.asnumpy(), want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(db.asnumpy(), want.sum(0), rtol=1e-4, atol=1e-5)


def test_softmax_cross_entropy_label_out_of_range_is_an_error(mode):
    cell = SoftmaxCrossEntropy()
    run = ms.jit(cell) if ms.get_context("mode") == ms.GRAPH_MODE else cell
    with pytest.raises(RuntimeError):
        run(t(np.zeros((2, 5))), t(np.zeros(5)), Tensor(np.array([1, 5], np.int32))).asnumpy()


# --- sum of squares -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["fused", "standard"])
def test_sum_of_squares(mode, path, request):
    if path == "standard":
        request.getfixturevalue("standard_ops")
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in ((3,), (70000,), (5, 7), (300, 301))]
    cell = SumOfSquares([ms.float32] * len(arrays))
    run = ms.jit(cell) if ms.get_context("mode") == ms.GRAPH_MODE else cell
    got = run(tuple(Tensor(a) for a in arrays)).asnumpy()
    assert got.shape == ()
    want = sum((a.astype(np.float64) ** 2).sum() for a in arrays)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    for bad in (np.inf, np.nan):
        arrays[1][123] = bad
        assert not np.isfinite(run(tuple(Tensor(a) for a in arrays)).asnumpy())


# --- projections of the real tokens ----------------------------------------------------------------
@pytest.mark.skipif(fused_ops.gemm_library() is None, reason="kernels built without oneDNN's sgemm")
@pytest.mark.parametrize("selected", ["holes", "all", "none", "one"])
@pytest.mark.parametrize("k, n", [(40, 70), (90, 33)], ids=["narrow-x", "wide-x"])
def test_row_matmul_computes_the_selected_rows_only(mode, selected, k, n):
    """y = x Wᵀ on the selected rows and 0 on the others; dx is 0 on the others and dW sums over the
    selected rows only, whatever dy holds on the others (large enough for several threads' blocks; dW
    is split by its rows when x is narrower than y, by its columns when x is wider)."""
    rng = np.random.default_rng(12)
    x, w, dy = rng.standard_normal((301, k)), rng.standard_normal((n, k)), rng.standard_normal((301, n))
    rows = {"holes": rng.random(301) < 0.6, "all": np.ones(301, bool), "none": np.zeros(301, bool),
            "one": np.arange(301) == 150}[selected]
    cell = RowMatMul()
    assert cell.fused
    selected_rows = Tensor(rows.astype(np.int32))

    def loss(x_, w_):
        out = cell(x_, w_, selected_rows)
        return (out * t(dy)).sum(), out

    run = ms.value_and_grad(loss, (0, 1), has_aux=True)
    if ms.get_context("mode") == ms.GRAPH_MODE:
        run = ms.jit(run)
    (_, out), (dx, dw) = run(t(x), t(w))
    on = rows[:, None]
    np.testing.assert_allclose(out.asnumpy(), np.where(on, x @ w.T, 0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dx.asnumpy(), np.where(on, dy @ w, 0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dw.asnumpy(), (dy * on).T @ x, rtol=1e-5, atol=1e-4)
    assert not out.asnumpy()[~rows].any() and not dx.asnumpy()[~rows].any()


def test_row_matmul_standard_path_computes_every_row(standard_ops):
    rng = np.random.default_rng(13)
    x, w = rng.standard_normal((2, 5, 6)), rng.standard_normal((3, 6))
    cell = RowMatMul()
    assert not cell.fused
    out = cell(t(x), t(w), Tensor(np.zeros(10, np.int32))).asnumpy()
    np.testing.assert_allclose(out, x @ w.T, rtol=1e-5, atol=1e-5)


# --- the model on both paths --------------------------------------------------------------------
NEZHA = {"use_relative_positions": True, "max_relative_position": 3}


@pytest.mark.parametrize("model", [{}, dict(NEZHA, relative_position_type="learned"), NEZHA],
                         ids=["bert", "nezha-learned", "nezha-functional"])
def test_bert_gradients_equal_on_both_paths(mode, model, monkeypatch):
    """The whole encoder's loss and parameter gradients (BERT, NEZHA with a learned and with a constant
    relative table): fused kernels vs standard operators."""
    from src.heads import BertForSequenceClassification
    from tests.conftest import tiny_config

    rng = np.random.default_rng(10)
    ids = Tensor(rng.integers(1, 99, (3, 7)).astype(np.int32))
    mask = np.ones((3, 7), np.int32)
    mask[1, 4:] = 0  # padding
    mask[2, 3] = 0  # a hole: its row is skipped, and no real token attends to it
    seg = Tensor(np.zeros((3, 7), np.int32))

    def loss_and_grads():
        ms.set_seed(0)
        net = BertForSequenceClassification(tiny_config(**model), num_labels=2)
        net.set_train(True)  # dropout probabilities are 0 in tiny_config
        weights = net.trainable_params()

        def loss(*xs):
            return (net(*xs) ** 2).sum()

        fn = ms.value_and_grad(loss, None, weights)
        if ms.get_context("mode") == ms.GRAPH_MODE:
            fn = ms.jit(fn)
        loss, gs = fn(ids, Tensor(mask), seg)
        return float(loss.asnumpy()), {w.name: g.asnumpy() for w, g in zip(weights, gs)}

    fused_loss, fused = loss_and_grads()
    monkeypatch.setattr(fused_ops, "_resolved", True)
    monkeypatch.setattr(fused_ops, "_library", None)
    standard_loss, standard = loss_and_grads()
    assert fused_loss == pytest.approx(standard_loss, rel=1e-5)
    assert fused.keys() == standard.keys()
    for name in fused:
        np.testing.assert_allclose(fused[name], standard[name], rtol=1e-3, atol=1e-5, err_msg=name)


def test_nezha_longer_than_max_position_embeddings_on_both_paths(mode, monkeypatch):
    """NEZHA has no position table: a sequence longer than max_position_embeddings (and than K, and than
    the kernel's 32-wide tile) runs, with the same outputs on both paths."""
    from src.bert_model import BertModel
    from tests.conftest import tiny_config

    rng = np.random.default_rng(17)
    ids = Tensor(rng.integers(1, 99, (2, 80)).astype(np.int32))
    mask = np.ones((2, 80), np.int32)
    mask[1, 50:] = 0
    seg = Tensor(np.zeros((2, 80), np.int32))

    def sequence_output():
        ms.set_seed(0)
        net = BertModel(tiny_config(seq_length=80, max_position_embeddings=16, use_relative_positions=True,
                                    max_relative_position=24))
        net.set_train(False)
        return net(ids, Tensor(mask), seg)[0].asnumpy()

    fused = sequence_output()
    monkeypatch.setattr(fused_ops, "_resolved", True)
    monkeypatch.setattr(fused_ops, "_library", None)
    standard = sequence_output()
    assert fused.shape == (2, 80, 32)
    real = mask.astype(bool)
    np.testing.assert_allclose(fused[real], standard[real], rtol=1e-4, atol=1e-4)


# --- building -----------------------------------------------------------------------------------
def test_missing_compiler_falls_back_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(fused_ops, "_resolved", False)
    monkeypatch.setattr(fused_ops, "_library", None)
    monkeypatch.setenv("CXX", "no-such-compiler-for-bert-zoo")
    with caplog.at_level(logging.WARNING, logger="src.fused_ops"):
        assert fused_ops.kernel_library() is None
        assert not BiasGelu().fused
    assert "no C++ compiler" in caplog.text


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setattr(fused_ops, "_resolved", False)
    monkeypatch.setattr(fused_ops, "_library", None)
    monkeypatch.setenv("BERT_ZOO_FUSED_KERNELS", "0")
    assert fused_ops.kernel_library() is None


def test_build_errors_are_reported_and_the_cache_is_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("BERT_ZOO_CACHE", str(tmp_path))
    bad = tmp_path / "bad.cc"
    bad.write_text("this is not C++\n")
    monkeypatch.setattr(fused_ops, "SOURCE", bad)
    with pytest.raises(RuntimeError, match="error"):
        fused_ops._build(shutil.which("g++"))
    assert not list((tmp_path / "kernels").glob("*.so"))  # nothing half-written is left
    monkeypatch.undo()
    monkeypatch.setenv("BERT_ZOO_CACHE", str(tmp_path))
    first = fused_ops._build(shutil.which("g++"))
    assert first.parent == tmp_path / "kernels" and fused_ops._build(shutil.which("g++")) == first
