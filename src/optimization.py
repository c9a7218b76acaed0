"""Learning-rate schedule and optimizers for pretraining and fine-tuning.

* :class:`WarmupPolynomialDecayLR`: linear warmup, then polynomial decay (the zoo's schedule)::

      lr(t) = lr * t / warmup                                          if t < warmup
              (lr - end) * (1 - min(t, decay) / decay) ** power + end  otherwise

  :func:`learning_rate_at` is the same formula in plain Python, for logs and tests.
* :class:`Lamb`: LAMB (You et al. 2020) from elementary ops. ``nn.Lamb`` wraps a fused primitive
  that has no CPU kernel; this one runs on CPU, GPU and Ascend, in GRAPH and PYNATIVE mode.
* :func:`decay_filter`: which parameters get weight decay (not LayerNorm, not biases).
* :func:`build_optimizer`: Lamb, ``nn.AdamWeightDecay`` or ``nn.Momentum`` from an
  :class:`~src.config.OptimizerConfig`, with the schedule and the weight-decay groups.

Optimizer state lives in Parameters named as MindSpore's own optimizers name them, so that
``mindspore.save_checkpoint`` of the optimizer (or of a cell holding it) stores it and
``load_param_into_net`` restores it: ``global_step`` (int32 [1], number of updates applied),
``lamb_m.<param>`` / ``lamb_v.<param>`` (Lamb), ``adam_m.<param>`` / ``adam_v.<param>``
(AdamWeightDecay), ``moments.<param>`` (Momentum). The names are those of ``nn.Lamb``, so the
zoo's Lamb checkpoints resume with this Lamb.
"""
from __future__ import annotations

import logging
import math
import numbers
from typing import Any, Sequence, Union

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.nn.learning_rate_schedule import LearningRateSchedule

from .config import OptimizerConfig, ScheduleConfig

logger = logging.getLogger(__name__)

__all__ = ["WarmupPolynomialDecayLR", "learning_rate_at", "schedule_from_config", "decay_filter", "Lamb", "AdamW",
           "build_optimizer"]


# --------------------------------------------------------------------------------------
# Learning-rate schedule
# --------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_schedule(learning_rate: float, end_learning_rate: float, warmup_steps: int, decay_steps: int,
                    power: float) -> None:
    """Raise ValueError naming the first bad schedule argument."""
    for name, value in (("learning_rate", learning_rate), ("end_learning_rate", end_learning_rate),
                        ("power", power)):
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not _is_int(warmup_steps) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    if not _is_int(decay_steps) or decay_steps < 1:
        raise ValueError(f"decay_steps must be an integer >= 1, got {decay_steps!r}")


def learning_rate_at(step: int, learning_rate: float, end_learning_rate: float, warmup_steps: int,
                     decay_steps: int, power: float) -> float:
    """The learning rate of optimizer step ``step`` (0-based), in plain Python.

    Args:
        step: number of updates applied before this one (the optimizer's ``global_step``).
        learning_rate: peak learning rate, reached at the end of the warmup.
        end_learning_rate: learning rate from ``decay_steps`` on.
        warmup_steps: linear warmup steps; 0 for none.
        decay_steps: steps of the polynomial decay, counted from step 0 (not from the warmup's end).
        power: power of the decay; 1.0 is linear.

    Returns:
        ``lr * step / warmup`` during the warmup, else
        ``(lr - end) * (1 - min(step, decay) / decay) ** power + end``.
    """
    _check_schedule(learning_rate, end_learning_rate, warmup_steps, decay_steps, power)
    if step < warmup_steps:
        return learning_rate * step / warmup_steps
    progress = min(step, decay_steps) / decay_steps
    return (learning_rate - end_learning_rate) * (1.0 - progress) ** power + end_learning_rate


class WarmupPolynomialDecayLR(LearningRateSchedule):
    """Linear warmup to ``learning_rate``, then polynomial decay to ``end_learning_rate``.

    The formula of :func:`learning_rate_at`, as a Cell an optimizer calls with its global step
    (also inside GRAPH-mode compiled code).

    Args:
        learning_rate: peak learning rate, >= 0.
        end_learning_rate: final learning rate, >= 0.
        warmup_steps: linear warmup steps, >= 0 (0: start at the peak).
        decay_steps: steps of the decay, >= 1, counted from step 0.
        power: power of the decay, >= 0 (1.0: linear; 0.0: constant after the warmup).

    Inputs:
        global_step: int32 Tensor of shape [] or [1], the number of updates applied so far.

    Outputs:
        float32 Tensor of the shape of ``global_step``: the learning rate of this step.
    """

    def __init__(self, learning_rate: float, end_learning_rate: float, warmup_steps: int, decay_steps: int,
                 power: float):
        super().__init__()
        _check_schedule(learning_rate, end_learning_rate, warmup_steps, decay_steps, power)
        if warmup_steps > decay_steps:
            logger.warning("warmup_steps %d > decay_steps %d: the learning rate drops from %g to the end value "
                           "%g at step %d", warmup_steps, decay_steps, learning_rate, end_learning_rate,
                           warmup_steps)
        self.learning_rate = float(learning_rate)
        self.end_learning_rate = float(end_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.power = float(power)

    def value_at(self, step: int) -> float:
        """The learning rate of step ``step`` in plain Python (for logging)."""
        return learning_rate_at(step, self.learning_rate, self.end_learning_rate, self.warmup_steps,
                                self.decay_steps, self.power)

    def construct(self, global_step: Tensor) -> Tensor:
        step = ops.cast(global_step, ms.float32)
        progress = ops.minimum(step, float(self.decay_steps)) / float(self.decay_steps)
        lr = ops.pow(1.0 - progress, self.power) * (self.learning_rate - self.end_learning_rate) \
            + self.end_learning_rate
        if self.warmup_steps > 0:
            warmup_lr = step * (self.learning_rate / self.warmup_steps)
            lr = ops.select(step < float(self.warmup_steps), warmup_lr, lr)
        return lr

    def extend_repr(self) -> str:
        return (f"learning_rate={self.learning_rate}, end_learning_rate={self.end_learning_rate}, "
                f"warmup_steps={self.warmup_steps}, decay_steps={self.decay_steps}, power={self.power}")


def schedule_from_config(config: ScheduleConfig, total_steps: int) -> WarmupPolynomialDecayLR:
    """The schedule of an optimizer section; ``decay_steps`` 0 means ``total_steps``.

    Args:
        config: a :class:`~src.config.ScheduleConfig` (or a subclass such as ``LambConfig``).
        total_steps: optimizer steps of the run (updates, not micro-batches).
    """
    decay_steps = config.decay_steps
    if decay_steps == 0:
        if not _is_int(total_steps) or total_steps < 1:
            raise ValueError(f"decay_steps is 0 (= the run's total steps), so total_steps must be an "
                             f"integer >= 1, got {total_steps!r}")
        decay_steps = total_steps
    return WarmupPolynomialDecayLR(config.learning_rate, config.end_learning_rate, config.warmup_steps,
                                   decay_steps, config.power)


# --------------------------------------------------------------------------------------
# Weight-decay filter
# --------------------------------------------------------------------------------------
def decay_filter(param: Union[Parameter, str]) -> bool:
    """True if ``param`` gets weight decay: its name contains neither ``layernorm`` nor ``bias``.

    The test is case-insensitive, so ``bert.embeddings.LayerNorm.gamma`` and
    ``cls.predictions.bias`` are excluded and ``...attention.self.query.weight`` is decayed.

    Args:
        param: a Parameter or a parameter name.
    """
    name = (param if isinstance(param, str) else param.name).lower()
    return "layernorm" not in name and "bias" not in name


# --------------------------------------------------------------------------------------
# LAMB
# --------------------------------------------------------------------------------------
_lamb_update = ops.MultitypeFuncGraph("lamb_update")


def _l2_norm(x: Tensor) -> Tensor:
    """Euclidean norm of all elements, a float32 scalar."""
    squares = x * x
    if squares.ndim > 1:
        # on CPU a ReduceSum over the last axis then over the rest is ~15x faster than one over all axes
        squares = ops.reduce_sum(squares.reshape(squares.shape[0], -1), -1)
    return ops.sqrt(ops.reduce_sum(squares))


@_lamb_update.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor",
                       "Tensor", "Bool", "Bool", "Bool")
def _lamb_update_tensor(beta1: Tensor, beta2: Tensor, step_size: Tensor, eps_hat: Tensor, lr: Tensor,
                        weight_decay: Tensor, param: Parameter, m: Parameter, v: Parameter, gradient: Tensor,
                        decay_flag: bool, adapt_flag: bool, optim_filter: bool) -> Tensor:
    """One LAMB update of one parameter; returns the new parameter value (or the gradient if filtered out).

    Args:
        beta1, beta2: float32 scalars.
        step_size, eps_hat: float32 scalars ``sqrt(1 - beta2**t) / (1 - beta1**t)`` and
            ``eps * sqrt(1 - beta2**t)``, the bias corrections folded into two scalars.
        lr, weight_decay: float32 scalars.
        param, m, v: the parameter and its moments (assigned in place).
        gradient: the gradient, of the parameter's shape.
        decay_flag: apply weight decay (a compile-time constant).
        adapt_flag: scale by the trust ratio (a compile-time constant).
        optim_filter: update this parameter at all (a compile-time constant).
    """
    if not optim_filter:
        return gradient
    w = ops.cast(param, ms.float32)
    g = ops.cast(gradient, ms.float32)
    next_m = beta1 * m + (1.0 - beta1) * g
    next_v = beta2 * v + (1.0 - beta2) * ops.square(g)
    # = m̂ / (sqrt(v̂) + eps) with m̂ = m / (1 - b1^t), v̂ = v / (1 - b2^t), with one tensor pass fewer
    update = next_m / (ops.sqrt(next_v) + eps_hat) * step_size
    if decay_flag:
        update = update + weight_decay * w
    if adapt_flag:
        w_norm = _l2_norm(w)
        u_norm = _l2_norm(update)
        # trust ratio ||w|| / ||update||, 1 when either norm is 0 (no division by 0 in either branch)
        both_positive = ops.logical_and(w_norm > 0.0, u_norm > 0.0)
        one = ops.ones_like(w_norm)
        ratio = ops.select(both_positive, w_norm / ops.select(both_positive, u_norm, one), one)
        delta = (lr * ratio) * update
    else:
        delta = lr * update
    delta = ops.depend(delta, ops.assign(m, next_m))
    delta = ops.depend(delta, ops.assign(v, next_v))
    if param.dtype == ms.float32:
        return ops.assign_sub(param, delta)  # in place: a pass and a copy fewer than assign(w - delta)
    return ops.assign(param, ops.cast(w - delta, param.dtype))


def _check_unit_interval(name: str, value: Any) -> float:
    if not _is_number(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _check_non_negative(name: str, value: Any, positive: bool = False) -> float:
    bad = not _is_number(value) or not math.isfinite(value) or value < 0 or (positive and value == 0)
    if bad:
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


class Lamb(nn.Optimizer):
    """LAMB from elementary ops (runs on CPU, GPU and Ascend; GRAPH and PYNATIVE mode).

    For each parameter ``w`` with gradient ``g``, at step ``t`` = updates applied before + 1::

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g²
        u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd w      (wd only if decayed)
        r = ||w|| / ||u||  if both norms > 0, else 1
        w = w - lr r u

    The learning rate of an update is ``learning_rate(global_step)`` read before the step
    counter is incremented, as in MindSpore's own optimizers.

    Args:
        params: Parameters, or MindSpore parameter groups (dicts with ``params`` and optionally
            ``weight_decay``, ``lr``, plus an ``order_params`` entry). Without groups, weight decay
            applies to the parameters :func:`decay_filter` selects; with groups, to the groups
            whose ``weight_decay`` is > 0.
        learning_rate: a float >= 0 or a ``LearningRateSchedule`` (e.g.
            :class:`WarmupPolynomialDecayLR`).
        beta1, beta2: moment decay rates in [0, 1).
        eps: denominator epsilon, > 0.
        weight_decay: decoupled weight decay, >= 0 (or a Cell of the global step).
        adapt_undecayed: apply the trust ratio to the parameters without weight decay too (as
            MindSpore's ``nn.Lamb`` and the zoo do). False: they take plain bias-corrected Adam
            steps, as in TensorFlow's and NVIDIA's LAMB (``exclude_from_layer_adaptation``
            defaults to ``exclude_from_weight_decay``; apex ``use_nvlamb=False``).

    Inputs:
        gradients: tuple of Tensors, one per parameter, in the order of ``self.parameters``.

    Outputs:
        tuple of the updated parameter values.

    State: ``global_step`` int32 [1]; ``lamb_m.<name>``, ``lamb_v.<name>``: float32, of each
    parameter's shape, zero-initialised (float32 also for float16 parameters). The update is
    computed in float32 and cast to the parameter's dtype.
    """

    def __init__(self, params: Sequence[Union[Parameter, dict]], learning_rate: Union[float, LearningRateSchedule],
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6, weight_decay: float = 0.0,
                 adapt_undecayed: bool = True, *, state_prefix: str = "lamb"):
        if _is_number(learning_rate):
            _check_non_negative("learning_rate", learning_rate)
            learning_rate = float(learning_rate)
        if _is_number(weight_decay):
            weight_decay = _check_non_negative("weight_decay", weight_decay)
        super().__init__(learning_rate, list(params), weight_decay)
        self.beta1 = Tensor(_check_unit_interval("beta1", beta1), ms.float32)
        self.beta2 = Tensor(_check_unit_interval("beta2", beta2), ms.float32)
        self.eps = Tensor(_check_non_negative("eps", eps, positive=True), ms.float32)
        if not self.is_group:
            # the base class decays every name without 'beta'/'gamma'; use this project's rule
            self.decay_flags = tuple(decay_filter(p) for p in self._parameters)
        self.adapt_flags = tuple(bool(adapt_undecayed) or flag for flag in self.decay_flags)
        self.moments1 = self._parameters.clone(prefix=f"{state_prefix}_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix=f"{state_prefix}_v", init="zeros")
        for moment in (*self.moments1, *self.moments2):
            if moment.dtype != ms.float32:
                moment.set_dtype(ms.float32)  # float16 v underflows (g < 2.4e-4 gives v = 0)

    def _step_scalars(self):
        """(lr, weight_decay, step_size, eps_hat) of this update; counts the update in ``global_step``.
        ``step_size = sqrt(1 - b2^t) / (1 - b1^t)`` and ``eps_hat = eps sqrt(1 - b2^t)`` fold the two
        bias corrections into scalars."""
        weight_decay = self.get_weight_decay()
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        step = ops.cast(self.global_step.reshape(()), ms.float32)  # t = updates applied, this one included
        sqrt_bias_correction2 = ops.sqrt(1.0 - ops.pow(self.beta2, step))
        return lr, weight_decay, sqrt_bias_correction2 / (1.0 - ops.pow(self.beta1, step)), \
            self.eps * sqrt_bias_correction2

    @ms.jit(backend="ms_backend")
    def construct(self, gradients):
        lr, weight_decay, step_size, eps_hat = self._step_scalars()
        # one flat ops.partial per branch: a partial of a partial does not compile in graph mode
        if self.is_group:
            if self.is_group_lr:
                return self.hyper_map(ops.partial(_lamb_update, self.beta1, self.beta2, step_size, eps_hat),
                                      lr, weight_decay, self._parameters, self.moments1, self.moments2, gradients,
                                      self.decay_flags, self.adapt_flags, self.optim_filter)
            return self.hyper_map(ops.partial(_lamb_update, self.beta1, self.beta2, step_size, eps_hat, lr),
                                  weight_decay, self._parameters, self.moments1, self.moments2, gradients,
                                  self.decay_flags, self.adapt_flags, self.optim_filter)
        return self.hyper_map(ops.partial(_lamb_update, self.beta1, self.beta2, step_size, eps_hat, lr, weight_decay),
                              self._parameters, self.moments1, self.moments2, gradients, self.decay_flags,
                              self.adapt_flags, self.optim_filter)


class AdamW(Lamb):
    """Bias-corrected AdamW (``torch.optim.AdamW``, HuggingFace's fine-tuning optimizer), from
    the same elementary update as :class:`Lamb` without the trust ratio::

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g²
        w = w - lr ((m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd w)     (wd only if decayed)

    ``nn.AdamWeightDecay`` (and Google's BERT optimizer) is the same without the two bias
    corrections, so its early updates are larger: ``(1 - b1) / sqrt(1 - b2)`` = 3.16 times on
    the first step with the default betas. State names are those of ``nn.AdamWeightDecay`` (``adam_m.<name>``,
    ``adam_v.<name>``, ``global_step``). Arguments as :class:`Lamb`'s.

    With float32 parameters each update is one ``AdamWeightDecay`` primitive (the fused kernel
    ``nn.AdamWeightDecay`` runs, in place) with the bias corrections folded into its scalars:
    ``lr' = lr s``, ``eps' = eps sqrt(1 - b2^t)``, ``wd' = wd / s`` with ``s = sqrt(1 - b2^t) / (1 -
    b1^t)`` give ``w - lr' (m / (sqrt(v) + eps') + wd' w)``, the update above; about ten
    elementwise operators per parameter fewer than :class:`Lamb`'s elementary update, which is
    used for other dtypes.
    """

    def __init__(self, params: Sequence[Union[Parameter, dict]], learning_rate: Union[float, LearningRateSchedule],
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6, weight_decay: float = 0.0):
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay, adapt_undecayed=False,
                         state_prefix="adam")
        self.adapt_flags = tuple(False for _ in self.decay_flags)
        self.fused = all(p.dtype == ms.float32 for p in self._parameters)
        self.fused_update = ops.AdamWeightDecay()

    @ms.jit(backend="ms_backend")
    def construct(self, gradients):
        if not self.fused:
            return super().construct(gradients)
        lr, weight_decay, step_size, eps_hat = self._step_scalars()
        op, b1, b2 = self.fused_update, self.beta1, self.beta2
        # one flat ops.partial per branch (see Lamb.construct)
        if self.is_group:
            if self.is_group_lr:
                return self.hyper_map(ops.partial(_adamw_fused, op, b1, b2, eps_hat, step_size), lr, weight_decay,
                                      self._parameters, self.moments1, self.moments2, gradients, self.decay_flags,
                                      self.optim_filter)
            return self.hyper_map(ops.partial(_adamw_fused, op, b1, b2, eps_hat, step_size, lr), weight_decay,
                                  self._parameters, self.moments1, self.moments2, gradients, self.decay_flags,
                                  self.optim_filter)
        return self.hyper_map(ops.partial(_adamw_fused, op, b1, b2, eps_hat, step_size, lr, weight_decay),
                              self._parameters, self.moments1, self.moments2, gradients, self.decay_flags,
                              self.optim_filter)


_adamw_fused = ops.MultitypeFuncGraph("adamw_fused")


@_adamw_fused.register("Function", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor",
                       "Tensor", "Tensor", "Bool", "Bool")
def _adamw_fused_update(op, beta1: Tensor, beta2: Tensor, eps_hat: Tensor, step_size: Tensor, lr: Tensor,
                        weight_decay: Tensor, param: Parameter, m: Parameter, v: Parameter, gradient: Tensor,
                        decay_flag: bool, optim_filter: bool):
    """One bias-corrected AdamW update of a float32 parameter by the fused primitive (in place)."""
    if not optim_filter:
        return gradient
    decay = weight_decay / step_size if decay_flag else ops.zeros_like(step_size)
    return op(param, m, v, lr * step_size, beta1, beta2, eps_hat, decay, ops.cast(gradient, ms.float32))[0]


# --------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------
def _decay_groups(params: list[Parameter], weight_decay: float) -> list[dict]:
    """MindSpore parameter groups: weight decay on :func:`decay_filter` parameters only."""
    decayed = [p for p in params if decay_filter(p)]
    others = [p for p in params if not decay_filter(p)]
    groups: list[dict] = []
    if decayed:
        groups.append({"params": decayed, "weight_decay": weight_decay})
    if others:
        groups.append({"params": others, "weight_decay": 0.0})
    groups.append({"order_params": params})
    return groups


def build_optimizer(config: OptimizerConfig, params: Sequence[Parameter], total_steps: int) -> nn.Optimizer:
    """The optimizer ``config.optimizer`` selects, with its warmup/polynomial-decay schedule.

    * ``lamb``: :class:`Lamb`; ``adamw``: ``nn.AdamWeightDecay`` (no bias correction, as in
      Google's BERT, MindSpore and the zoo), or :class:`AdamW` with ``adamw.bias_correction``
      (torch / HuggingFace); all with weight decay on :func:`decay_filter` parameters only.
    * ``momentum``: ``nn.Momentum`` without weight decay.

    Args:
        config: the optimizer settings; only the selected section is used.
        params: trainable Parameters (e.g. ``network.trainable_params()``); their order is the
            order of the gradients the optimizer expects.
        total_steps: optimizer steps of the run; the decay length when the section's
            ``decay_steps`` is 0.

    Returns:
        A ``mindspore.nn.Optimizer`` whose ``learning_rate`` is a :class:`WarmupPolynomialDecayLR`.
    """
    params = list(params)
    if not params:
        raise ValueError("build_optimizer got no parameters to optimize")
    names = [p.name for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"parameter names must be unique (optimizer state is saved by name), "
                         f"duplicated: {', '.join(duplicates)}")
    section = config.selected
    try:
        schedule = schedule_from_config(section, total_steps)
    except ValueError as err:
        raise ValueError(f"{config.optimizer} schedule: {err}") from None
    if config.optimizer == "lamb":
        beta1 = _check_unit_interval("lamb.beta1", section.beta1)
        beta2 = _check_unit_interval("lamb.beta2", section.beta2)
        eps = _check_non_negative("lamb.eps", section.eps, positive=True)
        weight_decay = _check_non_negative("lamb.weight_decay", section.weight_decay)
        return Lamb(_decay_groups(params, weight_decay), schedule, beta1=beta1, beta2=beta2, eps=eps)
    if config.optimizer == "adamw":
        beta1 = _check_unit_interval("adamw.beta1", section.beta1)
        beta2 = _check_unit_interval("adamw.beta2", section.beta2)
        eps = _check_non_negative("adamw.eps", section.eps, positive=True)
        weight_decay = _check_non_negative("adamw.weight_decay", section.weight_decay)
        adam = AdamW if section.bias_correction else nn.AdamWeightDecay
        return adam(_decay_groups(params, weight_decay), schedule, beta1=beta1, beta2=beta2, eps=eps)
    if config.optimizer == "momentum":
        momentum = _check_non_negative("momentum.momentum", section.momentum)
        return nn.Momentum(params, schedule, momentum=momentum)
    raise ValueError(f"optimizer must be one of lamb, adamw, momentum, got {config.optimizer!r}")
