"""Fused operators of the encoder: C++ kernels on CPU, standard MindSpore operators elsewhere.

On this project's CPU machines MindSpore's exact GELU (``Erf``), ``LayerNormGrad``, ``Dropout``,
``BiasAddGrad``, ``ReduceSum`` and the attention's transposes took half of a fine-tuning step
(``benchmarks/bench_finetune_step.py --profile``). Each cell here computes one formula of the
encoder with the same float32 math as the standard operators, and on CPU runs it as one
multi-threaded, vectorised kernel forward and one backward (``src/fused_ops.cc`` through
``mindspore.ops.Custom(func_type="aot")`` with a ``bprop``):

* :class:`SelfAttention`: ``dropout(softmax(Q Kᵀ * scale + mask_bias)) V`` per head, from the
  fused Q|K|V projection and its bias; heads are split and merged inside the kernel.
* :class:`RelativeSelfAttention`: NEZHA's attention, the same with relative positions: a table
  ``T`` [2K+1, D] adds ``Q T[rel(i, j)]`` to the score of query i and key j and
  ``T[rel(i, j)]`` to the value it reads, ``rel(i, j) = clip(j - i, -K, K) + K``.
* :class:`DropoutAddLayerNorm`: ``LayerNorm(dropout(x + bias) + residual)``.
* :class:`BiasGelu`: ``gelu(x + bias)``, the exact (erf) GELU.
* :class:`LayerNormDropout`: ``dropout(LayerNorm(x))``.
* :class:`MaskedSoftmaxDropout`: ``dropout(softmax(scores * scale + mask_bias))``.
* :class:`RowMatMul`: ``x @ Wᵀ`` (the encoder's Dense projections before their bias) on the rows of
  real tokens only, by the sgemm of the oneDNN library inside MindSpore's wheel; padding rows are
  0. A batch padded to 128 tokens costs what its real tokens cost.
* :class:`SoftmaxCrossEntropy`: ``-log softmax(logits + bias)[label]`` per row, the masked-LM loss.
* :class:`SumOfSquares`: ``sum(x ** 2)`` over a tuple of tensors (the global gradient norm).
* :class:`CrfLogPartition`, :class:`CrfViterbi`: the CRF's forward algorithm (with its
  forward-backward gradient) and Viterbi decoding (``src/crf.py``), one kernel call each instead
  of about 8 small operators per sequence position.

The kernels are compiled with ``g++`` (or ``$CXX``) the first time a cell is built on CPU, not
at import, and cached under ``$BERT_ZOO_CACHE/kernels`` (default ``~/.cache/bert_zoo/kernels``)
by a hash of the source, the compiler, the flags and the CPU. The cells use the standard
operators instead (the composition the model used before) when the device is not CPU, when no
compiler is found or the build fails (a warning says why), or when ``BERT_ZOO_FUSED_KERNELS=0``.
:class:`RowMatMul` also needs ``libdnnl.so.*`` in MindSpore's ``lib`` directory (linked when found;
else the kernels are built without it and the projections use MindSpore's MatMul).
Kernels use as many threads as the process may use cores (``BERT_ZOO_KERNEL_THREADS`` to set).

Dropout in the kernels takes one int32 seed per call, the next value of a counter of dropout calls
(:func:`dropout_rng`) plus a mix of the global seed, and hashes it with the element index
(SplitMix64) instead of using MindSpore's ``Dropout`` generator: the masks differ from the
standard operator's, their distribution (keep with probability ``1 - p``, scale by ``1 / (1 - p)``)
is the same, and a checkpoint holding the counter resumes with the same masks (runs start the
stream over with :func:`reset_dropout_rng`; :class:`Dropout` is the plain dropout of the heads).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

import mindspore as ms
from mindspore import Tensor, nn, ops

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("fused_ops.cc")
ENV_SWITCH = "BERT_ZOO_FUSED_KERNELS"
KERNELS = ("BiasGelu", "BiasGeluGrad", "Dropout", "DropoutGrad", "DropoutAddLayerNorm", "DropoutAddLayerNormGrad",
           "LayerNormDropout", "LayerNormDropoutGrad", "MaskedSoftmaxDropout", "MaskedSoftmaxDropoutGrad",
           "SelfAttention", "SelfAttentionGrad", "RelativeSelfAttention", "RelativeSelfAttentionGrad", "SumOfSquares",
           "BiasSoftmaxCrossEntropy", "BiasSoftmaxCrossEntropyGrad", "CrfForward", "CrfForwardGrad", "CrfViterbi")
# tried in order: libmvec's vector erff/expf, then scalar libm, then without -march=native
_BUILDS = (
    ["-march=native", "-fopenmp-simd", "-lmvec"],
    ["-march=native", "-fopenmp-simd", "-DBERT_ZOO_SCALAR_MATH"],
    ["-fopenmp-simd", "-DBERT_ZOO_SCALAR_MATH"],
)
_COMMON_FLAGS = ["-O3", "-std=c++17", "-fno-math-errno", "-shared", "-fPIC", "-Wl,--no-undefined"]
GEMM_KERNELS = ("RowMatMul", "RowMatMulGrad")  # need oneDNN's sgemm (the copy inside MindSpore's wheel)

_lock = threading.Lock()
_library: Optional[str] = None
_resolved = False
_gemm: Optional[dict] = None


def kernel_cache_dir() -> Path:
    root = os.environ.get("BERT_ZOO_CACHE") or Path.home() / ".cache" / "bert_zoo"
    return Path(root).expanduser() / "kernels"


def _cpu_signature() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def _dnnl_flags() -> list[str]:
    """Flags that link the oneDNN library MindSpore ships (for its sgemm), or [] when there is none."""
    lib_dir = Path(ms.__file__).resolve().parent / "lib"
    found = sorted(lib_dir.glob("libdnnl.so.*"))
    if not found:
        return []
    return ["-DBERT_ZOO_DNNL", f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", f"-l:{found[-1].name}"]


def _build(compiler: str) -> Path:
    """Compile SOURCE into the cache (atomic rename) and return the library's path: with oneDNN's
    sgemm (the GEMM_KERNELS) when MindSpore ships it and it links, else without."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    source = SOURCE.read_bytes()
    errors = []
    dnnl = _dnnl_flags()
    for extra in [dnnl + b for b in _BUILDS] + list(_BUILDS) if dnnl else _BUILDS:
        flags = _COMMON_FLAGS + extra
        key = hashlib.sha256(b"\0".join([source, version.encode(), " ".join(flags).encode(),
                                         platform.machine().encode(), _cpu_signature().encode()])).hexdigest()[:16]
        target = kernel_cache_dir() / f"fused_ops-{key}.so"
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        cmd = [compiler, *[f for f in flags if not f.startswith("-l")], "-o", tmp, str(SOURCE),
               *[f for f in flags if f.startswith("-l")], "-lm", "-lpthread"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            try:
                lib = ctypes.CDLL(tmp)
                missing = [k for k in KERNELS + (GEMM_KERNELS if "-DBERT_ZOO_DNNL" in extra else ())
                           if not hasattr(lib, k)]
                if missing:
                    raise OSError(f"missing symbols {missing}")
            except OSError as err:
                errors.append(f"{' '.join(extra)}: cannot load: {err}")
            else:
                os.replace(tmp, target)
                return target
        else:
            errors.append(f"{' '.join(extra)}: {proc.stderr.strip()[-500:]}")
        Path(tmp).unlink(missing_ok=True)
    raise RuntimeError("; ".join(errors))


_portable = threading.local()


@contextlib.contextmanager
def standard_operators():
    """Cells built inside this block use the standard MindSpore operators, whatever the device:
    for graphs that leave this machine (MindIR/ONNX export), which must not reference a kernel
    library compiled here."""
    previous = getattr(_portable, "on", False)
    _portable.on = True
    try:
        yield
    finally:
        _portable.on = previous


def kernel_library() -> Optional[str]:
    """Path of the compiled CPU kernels, or None when the fused cells use standard operators.

    Decided once per process, at the first call: None when ``BERT_ZOO_FUSED_KERNELS=0``, when
    MindSpore's device target is not CPU, or when the kernels cannot be built (a warning says why).
    Always None inside :func:`standard_operators`.
    """
    global _library, _resolved
    if getattr(_portable, "on", False):
        return None
    with _lock:
        if _resolved:
            return _library
        _resolved = True
        if os.environ.get(ENV_SWITCH, "1") == "0":
            logger.info("fused CPU kernels off (%s=0)", ENV_SWITCH)
            return None
        if ms.get_context("device_target") != "CPU":
            return None
        compiler = shutil.which(os.environ.get("CXX", "g++"))
        if compiler is None:
            logger.warning("no C++ compiler (g++ or $CXX) found: the encoder uses standard MindSpore operators, "
                           "which are several times slower on CPU")
            return None
        try:
            _library = str(_build(compiler))
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            logger.warning("building the fused CPU kernels failed, using standard MindSpore operators: %s", err)
            return None
        logger.info("fused CPU kernels: %s", _library)
        return _library


def gemm_library() -> Optional[str]:
    """Path of the compiled CPU kernels when they include the GEMM_KERNELS (oneDNN's sgemm), else None."""
    global _gemm
    library = kernel_library()
    if library is None:
        return None
    with _lock:
        if _gemm is None:
            _gemm = {}
        if library not in _gemm:
            _gemm[library] = all(hasattr(ctypes.CDLL(library), k) for k in GEMM_KERNELS)
        return library if _gemm[library] else None


def _custom(library: str, name: str, out_shape, out_dtype, bprop=None) -> ops.Custom:
    return ops.Custom(f"{library}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot", bprop=bprop)


def _scalar(value: float) -> Tensor:
    return Tensor([value], ms.float32)


_DROPOUT_RNG: Optional[ms.Parameter] = None  # the dropout call counter (see dropout_rng)


def dropout_rng() -> ms.Parameter:
    """The state of the fused kernels' dropout: an int32 [1] counter of training calls, shared by
    every fused cell of the process. Call ``k`` draws its masks from seed ``k + mix(global seed)``,
    so the masks depend on the global seed and on how many dropout calls came before: a training
    checkpoint that holds this counter (``TrainStep.state``) resumes with the very masks an
    uninterrupted run draws. It is not a weight of any network."""
    global _DROPOUT_RNG
    with _lock:
        if _DROPOUT_RNG is None:
            _DROPOUT_RNG = ms.Parameter(Tensor([0], ms.int32), name="dropout_rng.counter", requires_grad=False)
        return _DROPOUT_RNG


def reset_dropout_rng(calls: int = 0) -> None:
    """Start the dropout stream over (a new run) or at ``calls``."""
    dropout_rng().set_data(Tensor([calls], ms.int32))


def _seed_base() -> int:
    seed = ms.get_seed()
    return 0 if seed is None else (int(seed) * 0x9E3779B1 + 0x7F4A7C15) % (2 ** 30)


class _Dropout(nn.Cell):
    """Shared by the fused cells: dropout probability, the per-call seed and the keep probability."""

    def __init__(self, dropout_prob: float):
        super().__init__()
        if not 0.0 <= dropout_prob < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {dropout_prob}")
        self.dropout_prob = float(dropout_prob)
        self.library = kernel_library()
        self.fused = self.library is not None
        if self.fused:
            self.keep_train = _scalar(1.0 - self.dropout_prob)
            self.keep_eval = _scalar(1.0)
            self.no_seed = Tensor([0], ms.int32)
            self.one = Tensor([1], ms.int32)
            self.seed_base = Tensor([_seed_base()], ms.int32)
            dropout_rng()
        else:
            self.dropout = nn.Dropout(p=self.dropout_prob)

    def keep_and_seed(self):
        """(keep_prob float32 [1], seed int32 [1]) for this call: the next value of the dropout stream
        (:func:`dropout_rng`) in training, no dropout otherwise."""
        if self.training and self.dropout_prob > 0:
            ops.assign_add(_DROPOUT_RNG, self.one)
            return self.keep_train, _DROPOUT_RNG + self.seed_base
        return self.keep_eval, self.no_seed


class Dropout(_Dropout):
    """Dropout with the fused kernels' seeded masks (resumable, see :func:`dropout_rng`); MindSpore's
    ``nn.Dropout`` where the kernels are not used.

    Inputs:
        x: float [..].

    Outputs:
        float32 [..] on the fused path, else the dtype of ``x``.
    """

    def __init__(self, p: float):
        super().__init__(p)
        if self.fused:
            grad = _custom(self.library, "DropoutGrad", lambda dy, m, k: dy, lambda dy, m, k: dy)

            def bprop(x, keep, seed, out, dout):
                return grad(dout[0], out[1], keep), ops.zeros_like(keep), ops.zeros_like(seed)

            self.op = _custom(self.library, "Dropout", lambda x, k, s: (x, x), lambda x, k, s: (x, ms.uint8), bprop)

    def construct(self, x: Tensor) -> Tensor:
        if self.fused:
            keep, seed = self.keep_and_seed()
            return self.op(x.astype(ms.float32), keep, seed)[0]
        return self.dropout(x)


class BiasGelu(nn.Cell):
    """``gelu(x + bias)`` with the exact (erf) GELU: the feed-forward's Dense bias and activation.

    Inputs:
        x: float [.., C] (the Dense output before its bias); bias: float [C].

    Outputs:
        float32 [.., C] on the fused path, else the dtype of ``x``.
    """

    def __init__(self):
        super().__init__()
        library = kernel_library()
        self.fused = library is not None
        if self.fused:
            grad = _custom(library, "BiasGeluGrad", lambda x, b, dy: (x, b), lambda x, b, dy: (x, b))

            def bprop(x, bias, out, dout):
                return grad(x, bias, dout)

            self.op = _custom(library, "BiasGelu", lambda x, b: x, lambda x, b: x, bprop)
        else:
            self.gelu = nn.GELU(approximate=False)

    def construct(self, x: Tensor, bias: Tensor) -> Tensor:
        if self.fused:
            return self.op(x.astype(ms.float32), bias.astype(ms.float32))
        return self.gelu(x + bias.astype(x.dtype))


class RowMatMul(nn.Cell):
    """``x @ weight.T`` on the rows of real tokens: a Dense projection without its bias.

    On the fused path (float32, CPU kernels built with oneDNN's sgemm) only the rows with
    ``rows != 0`` are computed and the others are 0: a padded batch costs what its real tokens
    cost. Elsewhere every row is computed by the standard MatMul. Either way the padding rows
    carry no information: nothing a real token computes may depend on them (attention gives
    padded keys probability 0, losses skip padded positions).

    Inputs:
        x: float [.., K]; weight: float [N, K]; rows: int32 [number of rows of x] (1 real, 0 padding).

    Outputs:
        [.., N], float32 on the fused path, else the dtype of ``x``.
    """

    def __init__(self, compute_type=ms.float32):
        super().__init__()
        self.compute_type = compute_type
        library = gemm_library() if compute_type == ms.float32 else None
        self.fused = library is not None
        if self.fused:
            grad = _custom(library, "RowMatMulGrad", lambda x, w, r, dy: (x, w), lambda x, w, r, dy: (x, w))

            def bprop(x, weight, rows, out, dout):
                dx, dw = grad(x, weight, rows, dout)
                return dx, dw, ops.zeros_like(rows)

            self.op = _custom(library, "RowMatMul", lambda x, w, r: [x[0], w[0]], lambda x, w, r: x, bprop)
        else:
            self.matmul = ops.MatMul(transpose_b=True)

    def construct(self, x: Tensor, weight: Tensor, rows: Tensor) -> Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).astype(self.compute_type)
        if self.fused:
            out = self.op(x2, weight.astype(ms.float32), rows)
        else:
            out = self.matmul(x2, weight.astype(self.compute_type))
        return out.reshape(shape[:-1] + (out.shape[-1],))


class DropoutAddLayerNorm(_Dropout):
    """``LayerNorm(dropout(x + bias) + residual)``: the Dense bias, dropout, residual and LayerNorm that
    end every attention and feed-forward block (the LayerNorm parameters are passed in, so that they
    stay in the model's ``LayerNorm`` cells under their checkpoint names).

    Args:
        dropout_prob: probability of zeroing an element of ``x + bias`` in training.
        eps: LayerNorm epsilon.

    Inputs:
        x: float [.., H]; bias: float [H]; residual: float32 [.., H]; gamma, beta: float32 [H].

    Outputs:
        float32 [.., H].
    """

    def __init__(self, dropout_prob: float, eps: float):
        super().__init__(dropout_prob)
        if self.fused:
            grad = _custom(self.library, "DropoutAddLayerNormGrad",
                           lambda dy, z, m, r, g, mask, k: (dy, dy, g, g, g),
                           lambda dy, z, m, r, g, mask, k: (dy, dy, g, g, g))

            def bprop(x, bias, residual, gamma, beta, eps_, keep, seed, out, dout):
                _, z, mean, rstd, mask = out
                dx, dres, dbias, dgamma, dbeta = grad(dout[0], z, mean, rstd, gamma, mask, keep)
                return (dx, dbias, dres, dgamma, dbeta, ops.zeros_like(eps_), ops.zeros_like(keep),
                        ops.zeros_like(seed))

            self.op = _custom(self.library, "DropoutAddLayerNorm",
                              lambda x, b, r, g, be, e, k, s: (x, x, x[:-1], x[:-1], x),
                              lambda x, b, r, g, be, e, k, s: (x, x, x, x, ms.uint8), bprop)
            self.eps = _scalar(eps)
        else:
            self.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)

    def construct(self, x: Tensor, bias: Tensor, residual: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        if self.fused:
            keep, seed = self.keep_and_seed()
            return self.op(x.astype(ms.float32), bias.astype(ms.float32), residual.astype(ms.float32), gamma, beta,
                           self.eps, keep, seed)[0]
        x = self.dropout(x + bias.astype(x.dtype)).astype(ms.float32)
        return self.layer_norm(x + residual, gamma, beta)[0]


class LayerNormDropout(_Dropout):
    """``dropout(LayerNorm(x))``: the end of the embeddings.

    Inputs:
        x: float32 [.., H]; gamma, beta: float32 [H].

    Outputs:
        float32 [.., H].
    """

    def __init__(self, dropout_prob: float, eps: float):
        super().__init__(dropout_prob)
        if self.fused:
            grad = _custom(self.library, "LayerNormDropoutGrad",
                           lambda dy, x, m, r, g, mask, k: (dy, g, g), lambda dy, x, m, r, g, mask, k: (dy, g, g))

            def bprop(x, gamma, beta, eps_, keep, seed, out, dout):
                _, mean, rstd, mask = out
                dx, dgamma, dbeta = grad(dout[0], x, mean, rstd, gamma, mask, keep)
                return dx, dgamma, dbeta, ops.zeros_like(eps_), ops.zeros_like(keep), ops.zeros_like(seed)

            self.op = _custom(self.library, "LayerNormDropout",
                              lambda x, g, b, e, k, s: (x, x[:-1], x[:-1], x),
                              lambda x, g, b, e, k, s: (x, x, x, ms.uint8), bprop)
            self.eps = _scalar(eps)
        else:
            self.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)

    def construct(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        if self.fused:
            keep, seed = self.keep_and_seed()
            return self.op(x.astype(ms.float32), gamma, beta, self.eps, keep, seed)[0]
        return self.dropout(self.layer_norm(x, gamma, beta)[0])


class MaskedSoftmaxDropout(_Dropout):
    """``dropout(softmax(scores * scale + mask_bias))`` over the last axis: attention probabilities.

    Args:
        dropout_prob: attention dropout probability in training.
        scale: factor on the scores (1/sqrt(D)).

    Inputs:
        scores: float [B, N, S, T]; mask_bias: float32 [B, 1, 1, T] (0 keep, -10000 drop).

    Outputs:
        float32 [B, N, S, T].
    """

    def __init__(self, dropout_prob: float, scale: float):
        super().__init__(dropout_prob)
        self.scale_value = float(scale)
        if self.fused:
            grad = _custom(self.library, "MaskedSoftmaxDropoutGrad", lambda d, p, m, s, k: d,
                           lambda d, p, m, s, k: d)

            def bprop(scores, mask_bias, scale_, keep, seed, out, dout):
                _, probs, mask = out
                return (grad(dout[0], probs, mask, scale_, keep), ops.zeros_like(mask_bias), ops.zeros_like(scale_),
                        ops.zeros_like(keep), ops.zeros_like(seed))

            self.op = _custom(self.library, "MaskedSoftmaxDropout",
                              lambda x, mb, s, k, sd: (x, x, x), lambda x, mb, s, k, sd: (x, x, ms.uint8), bprop)
            self.scale = _scalar(scale)
        else:
            self.softmax = nn.Softmax(axis=-1)

    def construct(self, scores: Tensor, mask_bias: Tensor) -> Tensor:
        if self.fused:
            keep, seed = self.keep_and_seed()
            return self.op(scores.astype(ms.float32), mask_bias.astype(ms.float32), self.scale, keep, seed)[0]
        return self.dropout(self.softmax(scores.astype(ms.float32) * self.scale_value + mask_bias))


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, S, H) -> (B, N, S, D)"""
    b, s, h = x.shape
    return x.reshape(b, s, num_heads, h // num_heads).transpose(0, 2, 1, 3)


class SelfAttention(_Dropout):
    """Multi-head scaled dot-product attention on a fused Q|K|V projection, with its bias, the padding
    mask and dropout: ``context = dropout(softmax(Q Kᵀ * scale + mask_bias)) V`` per head, where
    ``[Q | K | V] = qkv + bias``.

    The fused kernel reads the heads straight from the [B, S, 3H] projection and writes the context
    in [B, S, H] (no head transposes), and adds the bias (its gradient is a column sum of the
    projection's gradient). It skips the keys after a row's last unmasked one (padding): their
    probabilities underflow to exactly 0 anyway, so only the work changes, by the padded share.

    Args:
        num_heads: N; H must be a multiple of it.
        dropout_prob: attention-probability dropout in training.
        scale: factor on the scores (1/sqrt(D)).
        compute_type: dtype of the two matmuls on the standard path.

    Inputs:
        qkv: float [B, S, 3H], the three projections without their biases; bias: float [3H];
        mask_bias: float32 [B, 1, 1, S] (0 keep, -10000 drop).

    Outputs:
        [B, S, H]: float32 on the fused path, ``compute_type`` on the standard one.
    """

    def __init__(self, num_heads: int, dropout_prob: float, scale: float, compute_type=ms.float32):
        super().__init__(dropout_prob)
        self.num_heads = num_heads
        self.compute_type = compute_type
        if self.fused:
            def context_shape(qkv, b, mb, n, s, kp, sd):
                return [qkv[0], qkv[1], qkv[2] // 3]

            def probs_shape(qkv, b, mb, n, s, kp, sd):
                return [qkv[0], num_heads, qkv[1], qkv[1]]

            grad = _custom(self.library, "SelfAttentionGrad", lambda dc, qkv, b, p, m, n, s, kp: (qkv, b),
                           lambda dc, qkv, b, p, m, n, s, kp: (qkv, b))

            def bprop(qkv, bias, mask_bias, heads, scale_, keep, seed, out, dout):
                _, probs, mask = out
                dqkv, dbias = grad(dout[0], qkv, bias, probs, mask, heads, scale_, keep)
                return (dqkv, dbias, ops.zeros_like(mask_bias), ops.zeros_like(heads), ops.zeros_like(scale_),
                        ops.zeros_like(keep), ops.zeros_like(seed))

            self.op = _custom(self.library, "SelfAttention",
                              lambda *shapes: (context_shape(*shapes), probs_shape(*shapes), probs_shape(*shapes)),
                              lambda qkv, b, mb, n, s, kp, sd: (qkv, qkv, ms.uint8), bprop)
            self.heads = Tensor([num_heads], ms.int32)
            self.scale = _scalar(scale)
        else:
            self.softmax_dropout = MaskedSoftmaxDropout(dropout_prob, scale)
            self.batch_matmul_nt = ops.BatchMatMul(transpose_b=True)

    def construct(self, qkv: Tensor, bias: Tensor, mask_bias: Tensor) -> Tensor:
        if self.fused:
            keep, seed = self.keep_and_seed()
            return self.op(qkv.astype(ms.float32), bias.astype(ms.float32), mask_bias.astype(ms.float32), self.heads,
                           self.scale, keep, seed)[0]
        b, s, h3 = qkv.shape
        h = h3 // 3
        q, k, v = ops.split((qkv + bias.astype(qkv.dtype)).astype(self.compute_type), h, -1)
        n = self.num_heads
        scores = self.batch_matmul_nt(_split_heads(q, n), _split_heads(k, n))  # (B, N, S, S)
        probs = self.softmax_dropout(scores, mask_bias).astype(self.compute_type)
        context = ops.matmul(probs, _split_heads(v, n))  # (B, N, S, D)
        return context.transpose(0, 2, 1, 3).reshape(b, s, h)


class RelativeSelfAttention(_Dropout):
    """NEZHA's multi-head attention with relative positions (Wei et al. 2019) on a fused Q|K|V projection,
    with its bias, the padding mask and dropout. With ``[Q | K | V] = qkv + bias``, a table ``T``
    [R, D] (R = 2K + 1) shared by the heads and ``rel(i, j) = clip(j - i, -K, K) + K``, per head::

        scores[i, j] = (Q_i·K_j + Q_i·T[rel(i, j)]) * scale + mask_bias[j]
        P = dropout(softmax_j(scores));  context_i = sum_j P[i, j] (V_j + T[rel(i, j)])

    The fused kernel computes the position terms from ``Q Tᵀ`` [S, R] (a gather per row) and ``W T``,
    where ``W[i, r]`` sums row i of P over the keys at relative position r, instead of the [S, S, D]
    tensor of gathered table rows; its dropout masks, head layout and padded-key skipping are
    :class:`SelfAttention`'s. The standard path gathers ``T[rel]`` [S, S, D] and multiplies in batch.

    Args:
        num_heads: N; H must be a multiple of it.
        max_relative_position: K; the table has 2K + 1 rows.
        dropout_prob: attention-probability dropout in training.
        scale: factor on the scores (1/sqrt(D)).
        compute_type: dtype of the matmuls on the standard path.
        table_grad: compute the table's gradient (a learned table); False for a constant table, whose
            gradient the fused kernel then returns as zeros without computing it.

    Inputs:
        qkv: float [B, S, 3H], the three projections without their biases; bias: float [3H];
        mask_bias: float32 [B, 1, 1, S] (0 keep, -10000 drop); table: float [2K + 1, D].

    Outputs:
        [B, S, H]: float32 on the fused path, ``compute_type`` on the standard one.
    """

    def __init__(self, num_heads: int, max_relative_position: int, dropout_prob: float, scale: float,
                 compute_type=ms.float32, table_grad: bool = True):
        super().__init__(dropout_prob)
        if max_relative_position < 0:
            raise ValueError(f"max_relative_position must be >= 0, got {max_relative_position}")
        self.num_heads = num_heads
        self.max_relative_position = int(max_relative_position)
        self.compute_type = compute_type
        if self.fused:
            def context_shape(qkv, *_):
                return [qkv[0], qkv[1], qkv[2] // 3]

            def probs_shape(qkv, *_):
                return [qkv[0], num_heads, qkv[1], qkv[1]]

            grad = _custom(self.library, "RelativeSelfAttentionGrad", lambda dc, qkv, b, mb, t, *_: (qkv, b, t),
                           lambda dc, qkv, b, mb, t, *_: (qkv, b, t))

            def bprop(qkv, bias, mask_bias, table, heads, scale_, keep, seed, table_grad_, out, dout):
                _, probs, mask = out
                dqkv, dbias, dtable = grad(dout[0], qkv, bias, mask_bias, table, probs, mask, heads, scale_, keep,
                                           table_grad_)
                return (dqkv, dbias, ops.zeros_like(mask_bias), dtable, ops.zeros_like(heads), ops.zeros_like(scale_),
                        ops.zeros_like(keep), ops.zeros_like(seed), ops.zeros_like(table_grad_))

            self.op = _custom(self.library, "RelativeSelfAttention",
                              lambda *shapes: (context_shape(*shapes), probs_shape(*shapes), probs_shape(*shapes)),
                              lambda qkv, *_: (qkv, qkv, ms.uint8), bprop)
            self.heads = Tensor([num_heads], ms.int32)
            self.scale = _scalar(scale)
            self.table_grad = Tensor([int(table_grad)], ms.int32)
        else:
            self.softmax_dropout = MaskedSoftmaxDropout(dropout_prob, scale)
            self.batch_matmul_nt = ops.BatchMatMul(transpose_b=True)

    def construct(self, qkv: Tensor, bias: Tensor, mask_bias: Tensor, table: Tensor) -> Tensor:
        if self.fused:
            keep, seed = self.keep_and_seed()
            return self.op(qkv.astype(ms.float32), bias.astype(ms.float32), mask_bias.astype(ms.float32),
                           table.astype(ms.float32), self.heads, self.scale, keep, seed, self.table_grad)[0]
        b, s, h3 = qkv.shape
        h = h3 // 3
        n, d = self.num_heads, h // self.num_heads
        q, k, v = ops.split((qkv + bias.astype(qkv.dtype)).astype(self.compute_type), h, -1)
        q, k, v = _split_heads(q, n), _split_heads(k, n), _split_heads(v, n)  # (B, N, S, D)
        pos = ops.arange(0, s, dtype=ms.int32)
        kmax = self.max_relative_position
        index = ops.clip_by_value(pos.reshape(1, s) - pos.reshape(s, 1), -kmax, kmax) + kmax  # rel: (S, S)
        rel = ops.gather(table.astype(self.compute_type), index, 0)  # T[rel]: (S, S, D)
        q_t = q.transpose(2, 0, 1, 3).reshape(s, b * n, d)  # (S, B*N, D)
        rel_scores = ops.bmm(q_t, rel.swapaxes(1, 2)).reshape(s, b, n, s).transpose(1, 2, 0, 3)  # (B, N, S, S)
        probs = self.softmax_dropout(self.batch_matmul_nt(q, k) + rel_scores, mask_bias).astype(self.compute_type)
        p_t = probs.transpose(2, 0, 1, 3).reshape(s, b * n, s)  # (S, B*N, S)
        rel_context = ops.bmm(p_t, rel).reshape(s, b, n, d).transpose(1, 2, 0, 3)  # (B, N, S, D)
        context = ops.matmul(probs, v) + rel_context
        return context.transpose(0, 2, 1, 3).reshape(b, s, h)  # (B, S, H)


class SoftmaxCrossEntropy(nn.Cell):
    """``-log softmax(logits + bias)[label]`` of each row: the masked-LM loss over the vocabulary with
    the decoder's bias folded in. On CPU one kernel pass over the [N, V] logits forward and one
    backward (which also sums the bias gradient); elsewhere ``log_softmax`` and a gather.

    Inputs:
        logits: float [N, V] (the decoder's product, before its bias); bias: float [V];
        labels: int [N], each in [0, V) (the fused kernel fails on any other).

    Outputs:
        float32 [N]: each row's negative log-likelihood of its label.
    """

    def __init__(self):
        super().__init__()
        library = kernel_library()
        self.fused = library is not None
        if self.fused:
            grad = _custom(library, "BiasSoftmaxCrossEntropyGrad", lambda d, x, b, y, l: (x, b),
                           lambda d, x, b, y, l: (x, b))

            def bprop(logits, bias, labels, out, dout):
                d_logits, d_bias = grad(dout[0], logits, bias, labels, out[1])
                return d_logits, d_bias, ops.zeros_like(labels)

            self.op = _custom(library, "BiasSoftmaxCrossEntropy", lambda x, b, y: (y, y),
                              lambda x, b, y: (ms.float32, ms.float32), bprop)

    def construct(self, logits: Tensor, bias: Tensor, labels: Tensor) -> Tensor:
        labels = labels.reshape(-1).astype(ms.int32)
        if self.fused:
            return self.op(logits.astype(ms.float32), bias.astype(ms.float32), labels)[0]
        log_probs = ops.log_softmax(logits.astype(ms.float32) + bias.astype(ms.float32), -1)
        return -ops.gather_elements(log_probs, 1, labels.expand_dims(-1)).squeeze(-1)


class SumOfSquares(nn.Cell):
    """The sum of the squares of every element of a tuple of tensors, float32 [] (the squared global
    norm of the gradients; inf or nan when any element is). One pass over all of them on CPU;
    ``Square`` + ``ReduceSum`` per tensor elsewhere. Not differentiable.

    Args:
        dtypes: the dtypes of the tensors it will get; the fused kernel takes float32 only.
    """

    def __init__(self, dtypes=()):
        super().__init__()
        library = kernel_library()
        self.fused = library is not None and all(d == ms.float32 for d in dtypes)
        if self.fused:
            self.op = _custom(library, "SumOfSquares", lambda *shapes: [1], lambda *types: ms.float32)

    def construct(self, tensors):
        if self.fused:
            return self.op(*tensors).reshape(())
        total = ops.zeros((), ms.float32)
        for t in tensors:
            total = total + ops.square(t.astype(ms.float32)).sum()
        return total


class CrfLogPartition(nn.Cell):
    """The CRF's log-partition by the forward algorithm, one fused kernel forward and one backward
    (the forward-backward marginals); src/crf.py's ``_LogPartition`` computes the same with
    standard operators, and this cell is only built when :func:`kernel_library` is not None.

    Inputs:
        emissions: float32 [B, S, T]; on: float32 [B, S] (non-zero: the position is in the
        sequence); start, end: float32 [T]; transitions: float32 [T, T].

    Outputs:
        float32 [B]: log Z of each row (not zeroed for a row without an ON position).
    """

    def __init__(self, library: str):
        super().__init__()
        grad = _custom(library, "CrfForwardGrad", lambda dz, e, on, s, en, tr, z, a: (e, s, en, tr),
                       lambda dz, e, on, s, en, tr, z, a: (e, s, en, tr))

        def bprop(emissions, on, start, end, transitions, out, dout):
            log_z, alphas = out
            d_emissions, d_start, d_end, d_transitions = grad(dout[0], emissions, on, start, end, transitions,
                                                              log_z, alphas)
            return d_emissions, ops.zeros_like(on), d_start, d_end, d_transitions

        self.op = _custom(library, "CrfForward", lambda e, on, s, en, tr: (e[:1], e),
                          lambda e, on, s, en, tr: (e, e), bprop)

    def construct(self, emissions, on, start, end, transitions):
        return self.op(emissions, on, start, end, transitions)[0]


class CrfViterbi(nn.Cell):
    """The CRF's Viterbi decoding (src/crf.py's ``CRF.decode``) as one fused kernel; built only
    when :func:`kernel_library` is not None.

    Inputs: as :class:`CrfLogPartition`. Outputs: int32 [B, S], the best path's tags at the ON
    positions, 0 elsewhere.
    """

    def __init__(self, library: str):
        super().__init__()
        self.op = _custom(library, "CrfViterbi", lambda e, on, s, en, tr: e[:2], lambda e, on, s, en, tr: ms.int32)

    def construct(self, emissions, on, start, end, transitions):
        return self.op(emissions, on, start, end, transitions)
