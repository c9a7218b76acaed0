"""CRF tests: parity with pytorch-crf 0.7.2 (NLL, log Z, gold score, Viterbi, gradients) on prefix
masks and, through packed sequences, on general masks; log Z by brute-force enumeration; edge cases."""
from __future__ import annotations

import itertools

import mindspore as ms
import numpy as np
import pytest
import torch
import torchcrf
from mindspore import Tensor, nn

from src import fused_ops
from src.crf import CRF

# float32 resolves an NLL of ~100 to ~1e-5: absolute 1e-5 plus float32-level relative error
NLL_TOL = dict(rtol=1e-6, atol=1e-5)


class Outputs(nn.Cell):
    """NLL, log Z, gold score and Viterbi path of one CRF in one graph (one compile per shape)."""

    def __init__(self, crf: CRF):
        super().__init__()
        self.crf = crf

    def construct(self, emissions, tags, mask):
        return (self.crf(emissions, tags, mask), self.crf.log_partition(emissions, mask),
                self.crf.score(emissions, tags, mask), self.crf.decode(emissions, mask))


def run(crf: CRF, emissions: np.ndarray, tags: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """[nll, log_z, score, path] as numpy arrays."""
    out = Outputs(crf)(Tensor(emissions), Tensor(tags), Tensor(mask))
    return [x.asnumpy() for x in out]


@pytest.fixture(autouse=True, params=["fused", "standard"])
def path(request, monkeypatch):
    """Every test on both implementations: the C++ kernels (CPU) and the unrolled standard operators
    (other devices, exported graphs)."""
    if request.param == "fused":
        if fused_ops.kernel_library() is None:
            pytest.skip("fused CPU kernels unavailable")
    else:
        monkeypatch.setattr(fused_ops, "_resolved", True)
        monkeypatch.setattr(fused_ops, "_library", None)
    yield request.param


def test_the_path_in_use(path):
    assert CRF(3).fused == (path == "fused")


def reference(crf: CRF) -> torchcrf.CRF:
    """pytorch-crf (batch_first, float64) holding our parameters."""
    ref = torchcrf.CRF(crf.num_tags, batch_first=True).double()
    with torch.no_grad():
        for name in ("start_transitions", "end_transitions", "transitions"):
            getattr(ref, name).copy_(torch.from_numpy(getattr(crf, name).asnumpy().astype(np.float64)))
    return ref


def random_inputs(rng, batch: int, length: int, num_tags: int) -> tuple[np.ndarray, np.ndarray]:
    emissions = rng.standard_normal((batch, length, num_tags)).astype(np.float32)
    tags = rng.integers(0, num_tags, (batch, length)).astype(np.int32)
    return emissions, tags


def pack(array: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each row's ON positions to the front: (packed [B, N, ...], prefix mask [B, N]), N = max count."""
    counts = mask.sum(axis=1)
    packed = np.zeros((array.shape[0], max(int(counts.max()), 1), *array.shape[2:]), array.dtype)
    for row in range(len(array)):
        packed[row, :counts[row]] = array[row, mask[row]]
    return packed, np.arange(packed.shape[1])[None, :] < counts[:, None]


def torch_outputs(ref: torchcrf.CRF, emissions: np.ndarray, tags: np.ndarray, mask: np.ndarray):
    """pytorch-crf's NLL, log Z, score [B] and Viterbi paths (lists) on prefix masks."""
    e = torch.from_numpy(emissions.astype(np.float64))
    y = torch.from_numpy(tags.astype(np.int64))
    m = torch.from_numpy(mask)
    with torch.no_grad():
        nll = -ref(e, y, m, reduction="none").numpy()
        log_z = ref._compute_normalizer(e.transpose(0, 1), m.transpose(0, 1)).numpy()
        score = ref._compute_score(e.transpose(0, 1), y.transpose(0, 1), m.transpose(0, 1)).numpy()
        paths = ref.decode(e, m)
    return nll, log_z, score, paths


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("length,num_tags", [(1, 3), (2, 20), (9, 5), (23, 12), (40, 7)])
def test_prefix_mask_matches_pytorch_crf(mode, batch, length, num_tags):
    rng = np.random.default_rng(length * 100 + num_tags + batch)
    crf = CRF(num_tags, seed=length)
    emissions, tags = random_inputs(rng, batch, length, num_tags)
    lengths = rng.integers(1, length + 1, batch)
    lengths[0] = length
    mask = np.arange(length)[None, :] < lengths[:, None]

    nll, log_z, score, path = run(crf, emissions, tags, mask)
    ref_nll, ref_log_z, ref_score, ref_paths = torch_outputs(reference(crf), emissions, tags, mask)

    assert nll.shape == (batch,) and nll.dtype == np.float32
    assert path.shape == (batch, length) and path.dtype == np.int32
    np.testing.assert_allclose(nll, ref_nll, **NLL_TOL)
    np.testing.assert_allclose(log_z, ref_log_z, **NLL_TOL)
    np.testing.assert_allclose(score, ref_score, **NLL_TOL)
    for row in range(batch):
        assert path[row, :lengths[row]].tolist() == ref_paths[row]
        assert not path[row, lengths[row]:].any()


def holey_mask(rng, batch: int, length: int) -> np.ndarray:
    """Random masks with holes and the first position off (as BERT's label_mask at [CLS]);
    row 1 is a contiguous prefix, row 2 has a single ON position, the last row is all off."""
    mask = rng.random((batch, length)) < 0.6
    mask[:, 0] = False
    mask[0, [1, length - 1]] = True
    mask[1] = np.arange(length) < length // 2
    mask[2] = False
    mask[2, length // 3] = True
    mask[-1] = False
    return mask


@pytest.mark.parametrize("mask_dtype", [np.bool_, np.float32])  # int32: the OFF-tags test
def test_general_mask_equals_pytorch_crf_on_packed_sequences(mode, mask_dtype):
    rng = np.random.default_rng(7)
    batch, length, num_tags = 6, 23, 5
    crf = CRF(num_tags, seed=2)
    emissions, tags = random_inputs(rng, batch, length, num_tags)
    mask = holey_mask(rng, batch, length)

    nll, log_z, score, path = run(crf, emissions, tags, mask.astype(mask_dtype))

    rows = mask.any(axis=1)
    packed_emissions, packed_mask = pack(emissions[rows], mask[rows])
    packed_tags, _ = pack(tags[rows], mask[rows])
    ref_nll, ref_log_z, ref_score, ref_paths = torch_outputs(reference(crf), packed_emissions, packed_tags,
                                                             packed_mask)
    np.testing.assert_allclose(nll[rows], ref_nll, **NLL_TOL)
    np.testing.assert_allclose(log_z[rows], ref_log_z, **NLL_TOL)
    np.testing.assert_allclose(score[rows], ref_score, **NLL_TOL)
    expected = np.zeros((batch, length), np.int32)
    for row, ref_path in zip(np.flatnonzero(rows), ref_paths):
        expected[row, mask[row]] = ref_path
    np.testing.assert_array_equal(path, expected)
    # the all-off row
    assert nll[-1] == 0 and log_z[-1] == 0 and score[-1] == 0 and not path[-1].any()


def test_log_partition_and_viterbi_match_brute_force(mode):
    """T=3, up to 5 ON positions out of 6: every one of the T^n paths scored in float64."""
    rng = np.random.default_rng(3)
    num_tags, length = 3, 6
    crf = CRF(num_tags, seed=5)
    emissions, tags = random_inputs(rng, 5, length, num_tags)
    emissions *= 2.0
    mask = np.array([[1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0], [0, 1, 0, 1, 1, 0],
                     [0, 0, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], bool)
    _, log_z, score, path = run(crf, emissions, tags, mask)

    start, end, trans = (getattr(crf, n).asnumpy().astype(np.float64)
                         for n in ("start_transitions", "end_transitions", "transitions"))

    def path_score(e: np.ndarray, y: tuple) -> float:
        return start[y[0]] + sum(e[k, y[k]] for k in range(len(y))) \
            + sum(trans[y[k - 1], y[k]] for k in range(1, len(y))) + end[y[-1]]

    for row in range(len(mask)):
        e = emissions[row, mask[row]].astype(np.float64)
        paths = list(itertools.product(range(num_tags), repeat=len(e)))
        scores = np.array([path_score(e, y) for y in paths])
        np.testing.assert_allclose(log_z[row], np.logaddexp.reduce(scores), rtol=0, atol=1e-5)
        np.testing.assert_allclose(score[row], path_score(e, tuple(tags[row, mask[row]])), rtol=0, atol=1e-5)
        assert tuple(path[row, mask[row]]) == paths[int(scores.argmax())]

    # the same through a plain ms.jit function instead of a Cell
    @ms.jit
    def viterbi(e, m):
        return crf.decode(e, m)

    np.testing.assert_array_equal(viterbi(Tensor(emissions), Tensor(mask)).asnumpy(), path)


def test_gradients_match_torch_autograd(mode):
    """d mean(NLL) / d (emissions, start, end, transitions) on prefix and general masks, an all-off
    row included (torch: the packed sequences, gathered from the full emissions so its gradient
    lands on the original positions)."""
    rng = np.random.default_rng(11)
    batch, length, num_tags = 7, 12, 5
    crf = CRF(num_tags, seed=9)
    emissions, tags = random_inputs(rng, batch, length, num_tags)
    mask = holey_mask(rng, batch, length)
    mask[3] = np.arange(length) < length  # a full row

    def loss(e, y, m):
        return crf(e, y, m).mean()

    grad_fn = ms.value_and_grad(loss, grad_position=0, weights=crf.trainable_params())
    if mode == "graph":
        grad_fn = ms.jit(grad_fn)
    value, (d_emissions, d_params) = grad_fn(Tensor(emissions), Tensor(tags), Tensor(mask))
    d_params = {p.name.split(".")[-1]: g.asnumpy() for p, g in zip(crf.trainable_params(), d_params)}

    ref = reference(crf)
    full = torch.from_numpy(emissions.astype(np.float64)).requires_grad_(True)
    rows = np.flatnonzero(mask.any(axis=1))
    counts = mask[rows].sum(axis=1)
    packed = full.new_zeros((len(rows), int(counts.max()), num_tags))
    src_rows, src_cols = np.nonzero(mask[rows])
    ranks = np.concatenate([np.arange(c) for c in counts])
    packed = packed.index_put((torch.from_numpy(src_rows), torch.from_numpy(ranks)),
                              full[torch.from_numpy(rows[src_rows]), torch.from_numpy(src_cols)])
    packed_tags, packed_mask = pack(tags[rows], mask[rows])
    ref_loss = -ref(packed, torch.from_numpy(packed_tags.astype(np.int64)), torch.from_numpy(packed_mask),
                    reduction="sum") / batch
    ref_loss.backward()

    np.testing.assert_allclose(value.asnumpy(), ref_loss.item(), **NLL_TOL)
    np.testing.assert_allclose(d_emissions.asnumpy(), full.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert not d_emissions.asnumpy()[~mask].any()
    for name in ("start_transitions", "end_transitions", "transitions"):
        np.testing.assert_allclose(d_params[name], getattr(ref, name).grad.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)


def test_tags_at_off_positions_do_not_matter_and_empty_rows_are_zero(mode):
    rng = np.random.default_rng(5)
    batch, length, num_tags = 4, 9, 6
    crf = CRF(num_tags)
    emissions, tags = random_inputs(rng, batch, length, num_tags)
    mask = holey_mask(rng, batch, length).astype(np.int32)
    other = np.where(mask == 1, tags, rng.integers(0, num_tags, tags.shape)).astype(np.int32)
    assert (other != tags).any()
    net = Outputs(crf)
    first = [x.asnumpy() for x in net(Tensor(emissions), Tensor(tags), Tensor(mask))]
    second = [x.asnumpy() for x in net(Tensor(emissions), Tensor(other), Tensor(mask))]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    # the same Cell at another batch size: rows are independent
    single = [x.asnumpy() for x in net(Tensor(emissions[1:2]), Tensor(tags[1:2]), Tensor(mask[1:2]))]
    for a, b in zip(first, single):
        np.testing.assert_allclose(a[1:2], b, rtol=1e-6, atol=1e-6)
    nll, log_z, score, path = first
    assert nll[-1] == 0 and log_z[-1] == 0 and score[-1] == 0 and not path[-1].any()
    assert (nll[:-1] > 0).all()


def test_single_tag_has_zero_loss(mode):
    crf = CRF(1)
    emissions = np.random.default_rng(0).standard_normal((2, 5, 1)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0]], bool)
    nll, _, _, path = run(crf, emissions, np.zeros((2, 5), np.int32), mask)
    np.testing.assert_allclose(nll, 0.0, atol=1e-6)
    assert not path.any()


def test_shape_errors_name_the_shapes(mode):
    crf = CRF(4)
    with pytest.raises(ValueError, match=r"emissions must be \[B, S, 4\], got \(2, 3, 5\)"):
        crf(Tensor(np.zeros((2, 3, 5), np.float32)), Tensor(np.zeros((2, 3), np.int32)),
            Tensor(np.ones((2, 3), bool)))
    with pytest.raises(ValueError, match="mask must be"):
        crf.decode(Tensor(np.zeros((2, 3, 4), np.float32)), Tensor(np.ones((2, 4), bool)))


@pytest.mark.parametrize("num_tags", [0, -3])
def test_invalid_num_tags_raises(num_tags):
    with pytest.raises(ValueError, match=f"num_tags must be at least 1, got {num_tags}"):
        CRF(num_tags)


def test_seeded_init_is_deterministic_and_small():
    names = ("start_transitions", "end_transitions", "transitions")
    a, b, c = CRF(6, seed=3), CRF(6, seed=3), CRF(6, seed=4)
    assert [p.name for p in a.trainable_params()] == list(names)
    for name in names:
        value = getattr(a, name).asnumpy()
        np.testing.assert_array_equal(value, getattr(b, name).asnumpy())
        assert not np.array_equal(value, getattr(c, name).asnumpy())
        assert value.dtype == np.float32 and np.abs(value).max() <= 0.1
    assert a.transitions.shape == (6, 6) and a.start_transitions.shape == (6,)
