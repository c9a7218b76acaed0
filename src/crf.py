"""Linear-chain conditional random field for token tagging (NER), computed entirely in the graph.

Shape letters: B batch, S sequence length, T number of tags.

Definitions and parameter names are pytorch-crf 0.7.2's, so weights convert 1:1:
``transitions[i, j]`` is the score of moving from tag i to tag j, ``start_transitions[j]`` the
score of starting in tag j, ``end_transitions[j]`` of ending in it. For tags y_1..y_n and
emissions E, score = start[y_1] + Σ_k E[k, y_k] + Σ_k transitions[y_k-1, y_k] + end[y_n], and
NLL = log Z − score, with log Z the log-sum-exp of the scores of all T^n paths.

Design choice: the mask is general; the NER head passes label_mask, so [CLS]/[SEP]/padding/non-first
pieces are excluded. The mask need not be a contiguous prefix nor have its first position on. A
row's sequence is its ON positions in order: the start score applies at the first ON position,
transitions link consecutive ON positions (skipping OFF ones), the end score applies at the last
ON position. This equals pytorch-crf applied to the packed sequence of ON positions. In the
recursions α is carried unchanged through OFF positions, and Viterbi gives them identity
back-pointers so the back-tracking passes through them. Tags at OFF positions must be valid ids
(not −100) but do not affect anything. A row with no ON position has log Z = score = NLL = 0 and
decodes to all 0.

Implementation: the forward (log Z) and Viterbi recursions are Python loops over the static
sequence length, unrolled when the graph is compiled, and so is the back-tracking (one gather per
position); nothing leaves the graph, so the loss trains under ``ms.value_and_grad`` and ``decode``
runs inside a compiled Cell or ``ms.jit`` function, in GRAPH and PYNATIVE mode, for any batch size.
log Z has a hand-written backward (:class:`_LogPartition`, the forward-backward algorithm's
marginals) instead of autodiff through the unrolled loop: at S=128 that compiles in about 8 s
instead of about 13 s. The gold score is vectorized over positions and uses autodiff.

On CPU, when the fused kernels are available (src/fused_ops.py), log Z with its gradient and
Viterbi are each one C++ kernel call over the batch instead of the unrolled loops (same
definitions, tested equal): the unrolled graph is several thousand small operators whose launch
cost, not their arithmetic, dominated a small tagger's train step. Exported graphs
(``fused_ops.standard_operators()``) and other devices use the unrolled loops.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from . import fused_ops

# Primitives, not ops.amax / ops.logsumexp: functional reductions inside a Cell's bprop fail to
# compile in GRAPH mode ("The func graph is empty").
_reduce_max = ops.ReduceMax(keep_dims=True)
_reduce_sum = ops.ReduceSum(keep_dims=True)


def _logsumexp(x: Tensor, axis: int) -> Tensor:
    """Max-shifted log-sum-exp over ``axis`` (the axis is removed)."""
    shift = _reduce_max(x, axis)
    return (ops.log(_reduce_sum(ops.exp(x - shift), axis)) + shift).squeeze(axis)


def _positions(mask: Tensor) -> tuple[Tensor, Tensor]:
    """mask bool/int/float [B, S] -> (on, started), bool [B, S]: ``on`` where the mask is
    non-zero, ``started`` where some position before is ON."""
    on = ops.not_equal(mask.astype(ms.float32), 0.0)
    onf = on.astype(ms.float32)
    return on, ops.cumsum(onf, axis=1) - onf > 0.0


class _LogPartition(nn.Cell):
    """log Z by the forward algorithm, with the forward-backward gradient as its bprop.

    Inputs: emissions float32 [B, S, T]; on, started bool [B, S] (from :func:`_positions`);
    start, end float32 [T]; transitions float32 [T, T].
    Outputs: ``(log_z, alphas)``: float32 [B] (not yet zeroed for rows with no ON position) and
    the forward variables [B, S, T] (α carried through OFF positions), kept for the bprop.
    """

    def construct(self, emissions, on, started, start, end, transitions):
        emissions_at = ops.unstack(emissions, axis=1)  # one Unstack: a slice per step compiles slower
        on_at = ops.unstack(on.expand_dims(2), axis=1)  # S x (B, 1)
        started_at = ops.unstack(started.expand_dims(2), axis=1)
        transitions = transitions.expand_dims(0)  # (1, T, T)
        alpha = start + emissions_at[0]  # (B, T)
        alphas = [alpha]
        for i in range(1, len(emissions_at)):
            summed = _logsumexp(alpha.expand_dims(2) + transitions, 1)  # (B, T): over the previous tag
            step = ops.where(started_at[i], summed, start) + emissions_at[i]
            alpha = ops.where(on_at[i], step, alpha)
            alphas.append(alpha)
        return _logsumexp(alpha + end, 1), ops.stack(alphas, axis=1)

    def bprop(self, emissions, on, started, start, end, transitions, out, dout):
        """β_i(j): log-sum of the scores after position i given tag j there (β = end after the
        last position, carried back through OFF positions); the gradients are the marginals
        P(y_i = j) for emissions and start, P(y_prev = j, y_i = k) for transitions."""
        log_z, alphas = out
        grad = dout[0]  # (B,)
        b, s, t = emissions.shape
        linked = ops.logical_and(on, started)  # ON positions with an ON position before them
        emissions_at = ops.unstack(emissions, axis=1)
        linked_at = ops.unstack(linked.expand_dims(2), axis=1)
        transitions_ = transitions.expand_dims(0)  # (1, T, T)
        beta = end.broadcast_to((b, t))
        betas = [beta]
        for i in range(s - 1, 0, -1):
            back = _logsumexp(transitions_ + (emissions_at[i] + beta).expand_dims(1), 2)  # over the next tag
            beta = ops.where(linked_at[i], back, beta)
            betas.append(beta)
        betas = ops.stack(betas[::-1], axis=1)  # (B, S, T)

        norm = log_z.reshape(b, 1, 1)
        weight = grad.reshape(b, 1, 1)
        unary = ops.exp(alphas + betas - norm) * on.astype(ms.float32).expand_dims(2) * weight  # (B, S, T)
        first = ops.logical_and(on, ops.logical_not(started)).astype(ms.float32).expand_dims(2)
        d_start = (unary * first).sum(axis=(0, 1))
        d_end = (ops.softmax(alphas[:, -1] + end, axis=1) * grad.reshape(b, 1)).sum(axis=0)
        pair = (alphas[:, :-1].expand_dims(3) + transitions_.expand_dims(0)
                + (emissions[:, 1:] + betas[:, 1:]).expand_dims(2) - norm.expand_dims(3))  # (B, S-1, T, T)
        pair_weight = (linked[:, 1:].astype(ms.float32) * grad.reshape(b, 1)).reshape(b, s - 1, 1, 1)
        d_transitions = (ops.exp(pair) * pair_weight).sum(axis=(0, 1))
        return unary, ops.zeros_like(on), ops.zeros_like(started), d_start, d_end, d_transitions


class CRF(nn.Cell):
    """Linear-chain CRF with pytorch-crf's parameters and a general mask (see the module docstring).

    Args:
        num_tags: T, the number of tags (at least 1).
        seed: seed of the NumPy ``RandomState`` that draws the initial parameters, uniform in
            (−0.1, 0.1) like pytorch-crf's, in its order: start, end, transitions.

    Parameters:
        start_transitions: float32 [T]. end_transitions: float32 [T].
        transitions: float32 [T, T], ``transitions[i, j]`` scores tag i followed by tag j.

    Inputs (``construct``):
        emissions: float32 [B, S, T], per-position tag scores.
        tags: int32 [B, S], gold tags, valid ids everywhere (any id at OFF positions).
        mask: bool, int or float [B, S], non-zero at the positions that belong to the sequence.

    Outputs:
        float32 [B]: the negative log-likelihood of each row's tags (no reduction; the caller
        averages), 0 for a row with no ON position.
    """

    def __init__(self, num_tags: int, *, seed: int = 0):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be at least 1, got {num_tags}")
        self.num_tags = num_tags
        rng = np.random.RandomState(seed)

        def uniform(*shape):
            return Tensor(rng.uniform(-0.1, 0.1, size=shape).astype(np.float32))

        self.start_transitions = Parameter(uniform(num_tags), name="start_transitions")
        self.end_transitions = Parameter(uniform(num_tags), name="end_transitions")
        self.transitions = Parameter(uniform(num_tags, num_tags), name="transitions")
        library = fused_ops.kernel_library()
        self.fused = library is not None
        if self.fused:
            self._fused_log_partition = fused_ops.CrfLogPartition(library)
            self._fused_viterbi = fused_ops.CrfViterbi(library)
        else:
            self._log_partition = _LogPartition()

    def construct(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    def _check(self, emissions: Tensor, mask: Tensor) -> None:
        if len(emissions.shape) != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be [B, S, {self.num_tags}], got {emissions.shape}")
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask must be [B, S] = {emissions.shape[:2]}, got {mask.shape}")

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Score of the gold path over the ON positions.

        Args:
            emissions: float32 [B, S, T]. tags: int32 [B, S]. mask: bool/int/float [B, S].

        Returns:
            float32 [B]: start + emissions + transitions between consecutive ON positions + end;
            0 for a row with no ON position.
        """
        self._check(emissions, mask)
        b, s, t = emissions.shape
        emissions = emissions.astype(ms.float32)
        on, _ = _positions(mask)
        onf = on.astype(ms.float32)
        tags = tags.astype(ms.int32)
        one, zero = Tensor(1.0, ms.float32), Tensor(0.0, ms.float32)
        gold = ops.one_hot(tags, t, one, zero) * onf.expand_dims(2)  # (B, S, T), 0 at OFF positions
        # index of the previous ON position (−1 if none): running max of the ON indices, shifted by one
        index = ops.arange(s, dtype=ms.int32).reshape(1, s).broadcast_to((b, s))
        last_on, _ = ops.cummax(ops.where(on, index, ops.full_like(index, -1)), axis=1)
        prev = ops.concat([ops.full((b, 1), -1, dtype=ms.int32), last_on[:, :-1]], axis=1)  # (B, S)
        linked = ops.logical_and(on, prev >= 0)
        prev_tags = ops.gather_elements(tags, 1, ops.maximum(prev, 0))
        prev_gold = ops.one_hot(prev_tags, t, one, zero) * linked.astype(ms.float32).expand_dims(2)  # (B, S, T)
        first = onf - linked.astype(ms.float32)
        count = ops.cumsum(onf, axis=1)
        last = onf * (count == count[:, -1:]).astype(ms.float32)

        emission_score = (emissions * gold).sum(axis=(1, 2))
        start_score = ((gold * first.expand_dims(2)).sum(axis=1) * self.start_transitions).sum(axis=1)
        end_score = ((gold * last.expand_dims(2)).sum(axis=1) * self.end_transitions).sum(axis=1)
        moved = ops.matmul(prev_gold.reshape(b * s, t), self.transitions).reshape(b, s, t)  # transitions[prev, :]
        transition_score = (moved * gold).sum(axis=(1, 2))
        return emission_score + start_score + transition_score + end_score

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z: log-sum-exp of the scores of all tag paths over the ON positions.

        Args:
            emissions: float32 [B, S, T]. mask: bool/int/float [B, S].

        Returns:
            float32 [B], 0 for a row with no ON position.
        """
        self._check(emissions, mask)
        on, started = _positions(mask)
        if self.fused:
            log_z = self._fused_log_partition(emissions.astype(ms.float32), on.astype(ms.float32),
                                              self.start_transitions, self.end_transitions, self.transitions)
        else:
            log_z, _ = self._log_partition(emissions.astype(ms.float32), on, started, self.start_transitions,
                                           self.end_transitions, self.transitions)
        return log_z * on.any(axis=1).astype(ms.float32)

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Viterbi: the best tag path over the ON positions.

        Args:
            emissions: float32 [B, S, T]. mask: bool/int/float [B, S].

        Returns:
            int32 [B, S]: the best path's tags at the ON positions, 0 at OFF positions (all 0 for a
            row with no ON position).
        """
        self._check(emissions, mask)
        b, _, t = emissions.shape
        on, started = _positions(mask)
        if self.fused:
            return self._fused_viterbi(emissions.astype(ms.float32), on.astype(ms.float32), self.start_transitions,
                                       self.end_transitions, self.transitions)
        emissions_at = ops.unstack(emissions.astype(ms.float32), axis=1)
        on_at = ops.unstack(on.expand_dims(2), axis=1)  # S x (B, 1)
        started_at = ops.unstack(started.expand_dims(2), axis=1)
        linked_at = ops.unstack(ops.logical_and(on, started).expand_dims(2), axis=1)
        transitions = self.transitions.expand_dims(0)  # (1, T, T)
        identity = ops.arange(t, dtype=ms.int64).reshape(1, t).broadcast_to((b, t))
        best = self.start_transitions + emissions_at[0]  # (B, T)
        pointers = []  # pointers[i - 1][b, j]: the best tag at the previous position given tag j at i
        for i in range(1, len(emissions_at)):
            value, index = ops.max(best.expand_dims(2) + transitions, axis=1)  # (B, T): over the previous tag
            pointers.append(ops.where(linked_at[i], index, identity))
            step = ops.where(started_at[i], value, self.start_transitions) + emissions_at[i]
            best = ops.where(on_at[i], step, best)
        _, tag = ops.max(best + self.end_transitions, axis=1)  # (B,)
        tag = tag.reshape(b, 1)
        path = [tag]  # from position S-1 backwards
        for i in range(len(pointers), 0, -1):
            tag = ops.gather_elements(pointers[i - 1], 1, tag)
            path.append(tag)
        return ops.concat(path[::-1], axis=1).astype(ms.int32) * on.astype(ms.int32)
