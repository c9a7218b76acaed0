"""The pretraining loss and one composable train step.

:class:`BertPretrainingLoss` turns :class:`~src.heads.BertForPreTraining` logits into the zoo's loss
(weighted masked-LM cross-entropy plus next-sentence cross-entropy). :class:`TrainStep` runs one
optimizer step on any loss network, with every option an argument instead of a class per
combination (the zoo has five train-step cells):

    forward, backward on the scaled loss -> [accumulate N micro-batches] -> all-reduce (data
    parallel) -> global norm -> overflow check (the norm is not finite) -> update the loss scale
    -> unscale and global-norm clip (one multiplication per gradient) -> apply the update only if
    every gradient is finite.

It is written with ``mindspore.amp.DynamicLossScaler`` and ``all_finite`` rather than
``nn.TrainOneStepWithLossScaleCell``, which has no CPU kernel (NPUGetFloatStatusV2), so the same
code runs on CPU, GPU and Ascend. All its state (weights, optimizer moments and step, loss scale
and its counter, accumulation buffers) is in Parameters listed by :meth:`TrainStep.state`, so a
checkpoint of that list resumes training exactly.
"""
from __future__ import annotations

from typing import Optional

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from .config import BertConfig
from .fused_ops import SoftmaxCrossEntropy, SumOfSquares, dropout_rng
from .heads import (BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification,
                    BertForTokenClassification, gather_positions)


class BertPretrainingLoss(BertForPreTraining):
    """:class:`BertForPreTraining` with the zoo's loss (parameter names stay ``bert.*`` / ``cls.*``).

    ``mlm = Σ w·CE(logits, ids) / (Σ w + 1e-5)`` over the masked positions (Google), ``nsp`` the
    mean next-sentence cross-entropy, ``loss = mlm + nsp`` (``mlm`` only with ``use_nsp=False``,
    for line-by-line data). All in float32.

    Inputs:
        input_ids, input_mask, segment_ids: int32 [B, S]; next_sentence_labels: int32 [B, 1];
        masked_lm_positions, masked_lm_ids: int32 [B, P]; masked_lm_weights: float32 [B, P].

    Outputs:
        ``(loss, (mlm_loss, nsp_loss))``, float32 scalars.
    """

    def __init__(self, config: BertConfig, use_nsp: bool = True):
        super().__init__(config)
        self.use_nsp = use_nsp
        self.cross_entropy = SoftmaxCrossEntropy()

    def construct(self, input_ids, input_mask, segment_ids, next_sentence_labels, masked_lm_positions,
                  masked_lm_ids, masked_lm_weights):
        sequence_output, pooled_output = self.bert(input_ids, input_mask, segment_ids)
        masked_output = gather_positions(sequence_output, masked_lm_positions)  # (B, P, H)
        predictions = self.cls.predictions
        # the decoder's bias is added inside the loss: one pass over the [B*P, V] logits each way on CPU
        logits = predictions.decode(masked_output, self.bert.embeddings.word_embeddings.embedding_table)
        nll = self.cross_entropy(logits, predictions.bias, masked_lm_ids).reshape(masked_lm_ids.shape)
        mlm_loss = weighted_mean(nll, masked_lm_weights)
        if self.use_nsp:
            nsp_loss = next_sentence_loss(self.cls.seq_relationship(pooled_output), next_sentence_labels)
        else:
            nsp_loss = ops.zeros((), ms.float32)
        return mlm_loss + nsp_loss, (mlm_loss, nsp_loss)


def weighted_mean(nll: Tensor, weights: Tensor) -> Tensor:
    """Σ w·nll / (Σ w + 1e-5): Google's masked-LM loss over the real masked positions."""
    return (nll * weights).sum() / (weights.sum() + 1e-5)


def next_sentence_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """logits float32 [B, 2], labels int32 [B, 1] -> mean CE."""
    return classification_loss(logits, labels)


class BertClassificationLoss(BertForSequenceClassification):
    """:class:`BertForSequenceClassification` with its fine-tuning loss (parameter names stay
    ``bert.*`` / ``classifier.*``): mean cross-entropy over the batch, or the mean squared error
    when ``num_labels == 1`` (regression). In float32.

    Inputs:
        input_ids, input_mask, segment_ids: int32 [B, S]; label_ids: int32 [B] or [B, 1]
        (float32 for regression).

    Outputs:
        ``(loss, ())``, a float32 scalar and no auxiliary values (the form :class:`TrainStep` takes).
    """

    def __init__(self, config: BertConfig, num_labels: int, dropout_prob: Optional[float] = None,
                 pooling: str = "cls"):
        super().__init__(config, num_labels, dropout_prob, pooling)
        self.num_labels = num_labels

    def construct(self, input_ids, input_mask, segment_ids, label_ids):
        logits = super().construct(input_ids, input_mask, segment_ids)
        if self.num_labels == 1:
            loss = ((logits.reshape(-1) - label_ids.reshape(-1).astype(ms.float32)) ** 2).mean()
        else:
            loss = classification_loss(logits, label_ids)
        return loss, ()


def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """logits float32 [B, C], labels int32 [B] or [B, 1] -> mean CE."""
    log_probs = ops.log_softmax(logits.astype(ms.float32), -1)
    return -ops.gather_elements(log_probs, 1, labels.reshape(-1, 1).astype(ms.int32)).mean()


class BertTokenClassificationLoss(BertForTokenClassification):
    """:class:`BertForTokenClassification` with its fine-tuning loss (parameter names stay
    ``bert.*`` / ``classifier.*`` / ``crf.*``), in float32, over the ``label_mask`` positions only
    (a token's first WordPiece; not [CLS], [SEP], other pieces or padding):

    * CRF: the mean over the batch of each row's negative log-likelihood (pytorch-crf's
      ``reduction="mean"`` on the packed labelled positions);
    * softmax: the mean cross-entropy over all labelled positions of the batch (HuggingFace's
      loss with label -100 on the other positions).

    Inputs:
        input_ids, input_mask, segment_ids, label_ids, label_mask: int32 [B, S].

    Outputs:
        ``(loss, ())``.
    """

    def construct(self, input_ids, input_mask, segment_ids, label_ids, label_mask):
        emissions = self.emissions(input_ids, input_mask, segment_ids)  # (B, S, C)
        if self.use_crf:
            return self.crf(emissions, label_ids, label_mask).mean(), ()
        return token_classification_loss(emissions, label_ids, label_mask), ()


def token_classification_loss(logits: Tensor, labels: Tensor, label_mask: Tensor) -> Tensor:
    """logits float32 [B, S, C], labels and label_mask int32 [B, S] -> mean CE over the masked-in
    positions (0 when there are none)."""
    log_probs = ops.log_softmax(logits.astype(ms.float32), -1)
    nll = -ops.gather_elements(log_probs, 2, labels.astype(ms.int32).expand_dims(-1)).squeeze(-1)  # (B, S)
    weights = label_mask.astype(ms.float32)
    return (nll * weights).sum() / ops.maximum(weights.sum(), 1.0)


class BertQuestionAnsweringLoss(BertForQuestionAnswering):
    """:class:`BertForQuestionAnswering` with its fine-tuning loss: the mean of the start and the end
    cross-entropy, each a softmax over the real positions only (``input_mask`` 1; padding gets no
    probability). Parameter names stay ``bert.*`` / ``qa_outputs.*``.

    Inputs:
        input_ids, input_mask, segment_ids: int32 [B, S]; start_positions, end_positions: int32 [B]
        or [B, 1] (0, the [CLS] position, when the answer is not in the window or there is none).

    Outputs:
        ``(loss, ())``.
    """

    def construct(self, input_ids, input_mask, segment_ids, start_positions, end_positions):
        start_logits, end_logits = self.span_logits(input_ids, input_mask, segment_ids)
        return span_loss(start_logits, end_logits, start_positions, end_positions, input_mask), ()


def span_loss(start_logits: Tensor, end_logits: Tensor, start_positions: Tensor, end_positions: Tensor,
              input_mask: Tensor) -> Tensor:
    """float32 [B, S] logits, int32 positions [B] or [B, 1], int32 [B, S] mask -> (CE(start) + CE(end)) / 2,
    the softmax taken over the masked-in positions only."""
    bias = (1.0 - input_mask.astype(ms.float32)) * -10000.0
    losses = []
    for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
        log_probs = ops.log_softmax(logits.astype(ms.float32) + bias, -1)
        losses.append(-ops.gather_elements(log_probs, 1, positions.reshape(-1, 1).astype(ms.int32)).mean())
    return (losses[0] + losses[1]) / 2


class TrainStep:
    """One optimizer step on ``loss_network``, compiled with ``ms.jit`` in GRAPH mode.

    Args:
        loss_network: a Cell returning ``(loss, aux)``; ``aux`` is a tuple of scalars to log.
        optimizer: a MindSpore optimizer over the network's trainable parameters.
        loss_scale: initial dynamic loss scale; None disables scaling (steps with non-finite
            gradients are still skipped).
        scale_factor, scale_window: halve (÷ factor, floor 1) on overflow, raise (× factor) after
            ``scale_window`` clean steps.
        accumulation_steps: micro-batches per optimizer step; their gradients are averaged.
        clip_norm: global-norm clipping threshold; None or 0 disables clipping.
        grad_reducer: a ``nn.DistributedGradReducer`` (data parallel), or None.
        group_size: data-parallel ranks; above 1 the returned loss and aux are averaged over them.

    Calling it with one micro-batch returns ``(loss, aux, overflow, loss_scale, applied)``:
    ``applied`` is True when this call ended an accumulation cycle and the update was applied.
    """

    def __init__(self, loss_network: nn.Cell, optimizer: nn.Optimizer, *, loss_scale: Optional[float] = 65536.0,
                 scale_factor: int = 2, scale_window: int = 1000, accumulation_steps: int = 1,
                 clip_norm: Optional[float] = 1.0, grad_reducer: Optional[nn.Cell] = None, group_size: int = 1):
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be at least 1, got {accumulation_steps}")
        if loss_scale is not None and loss_scale < 1:
            raise ValueError(f"loss_scale must be at least 1, got {loss_scale}")
        self.network = loss_network
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.use_loss_scale = loss_scale is not None
        self.scaler = ms.amp.DynamicLossScaler(float(loss_scale or 1.0), scale_factor, scale_window)
        # name the scaler's state so that checkpoints hold it
        self.scaler.scale_value.name = "loss_scale.scale_value"
        self.scaler.counter.name = "loss_scale.counter"
        self.accumulation_steps = accumulation_steps
        self.clip_norm = float(clip_norm or 0.0)
        self.sum_of_squares = SumOfSquares([w.dtype for w in self.weights])
        self.grad_reducer = grad_reducer
        self.group_size = group_size
        if group_size > 1:
            self.all_reduce = ops.AllReduce()
        self.micro_step = Parameter(Tensor(0, ms.int32), name="train_step.micro_step", requires_grad=False)
        if accumulation_steps > 1:
            self.accumulated = self.weights.clone(prefix="accu_grads", init="zeros")
        self.grad_fn = ms.value_and_grad(self._scaled_loss, None, self.weights, has_aux=True)
        self._step = ms.jit(self._train_step)

    def state(self) -> list[Parameter]:
        """Every Parameter a checkpoint needs to resume exactly: weights, optimizer state, loss scale,
        accumulation buffers and the dropout stream of the fused kernels (``dropout_rng.counter``)."""
        params = list(self.network.get_parameters())
        seen = {id(p) for p in params}
        extra = [p for p in self.optimizer.get_parameters() if id(p) not in seen]
        extra += [self.scaler.scale_value, self.scaler.counter, self.micro_step, dropout_rng()]
        if self.accumulation_steps > 1:
            extra += list(self.accumulated)
        return params + extra

    def _scaled_loss(self, *batch):
        loss, aux = self.network(*batch)
        return loss * self.scaler.scale_value, (loss, aux)

    def _apply(self, grads):
        """Reduce, check, update the scale, unscale and clip, and (if finite) update the weights.

        One pass over the gradients gives their global norm, which is finite exactly when every
        gradient is (or the sum of squares of the scaled gradients overflows float32, which is an
        overflow too); then one multiplication per gradient unscales and clips:
        ``g / scale * clip / max(norm, clip)`` with ``norm`` the unscaled global norm.
        """
        if self.grad_reducer is not None:
            grads = self.grad_reducer(grads)
        squares = self.sum_of_squares(grads)  # of the scaled gradients
        finite = ops.isfinite(squares)
        inverse_scale = ops.reciprocal(self.scaler.scale_value.value())
        if self.use_loss_scale:
            self.scaler.adjust(finite)
        factor = inverse_scale
        if self.clip_norm > 0:
            norm = ops.sqrt(squares) * inverse_scale
            factor = factor * self.clip_norm / ops.maximum(norm, self.clip_norm)
        if self.use_loss_scale or self.clip_norm > 0:
            grads = tuple(g * factor.astype(g.dtype) for g in grads)
        if finite:
            self.optimizer(grads)
        return ops.logical_not(finite)

    def _train_step(self, *batch):
        (_, (loss, aux)), grads = self.grad_fn(*batch)
        if self.group_size > 1:  # report the mean over ranks, not rank 0's own
            loss = self.all_reduce(loss) / self.group_size
            aux = tuple(self.all_reduce(a) / self.group_size for a in aux)
        scale = self.scaler.scale_value.value()
        if self.accumulation_steps == 1:
            overflow = self._apply(grads)
            return loss, aux, overflow, scale, ops.ones((), ms.bool_)
        ops.assign_add(self.micro_step, ops.ones((), ms.int32))
        for accumulated, grad in zip(self.accumulated, grads):
            ops.assign_add(accumulated, grad / self.accumulation_steps)
        applied = (self.micro_step % self.accumulation_steps) == 0
        overflow = ops.zeros((), ms.bool_)
        if applied:
            overflow = self._apply(tuple(a.value() for a in self.accumulated))
            for accumulated in self.accumulated:
                ops.assign(accumulated, ops.zeros_like(accumulated))
        return loss, aux, overflow, scale, applied

    def __call__(self, *batch):
        return self._step(*batch)
