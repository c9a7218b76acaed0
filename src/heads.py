"""Task heads on top of :class:`~src.bert_model.BertModel`, named as in HuggingFace checkpoints.

Shape letters: B batch, S sequence length, P masked positions per sequence, H hidden size,
V vocabulary size, C number of labels (tags for token classification).
"""
from __future__ import annotations

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import TruncatedNormal

from .bert_model import BertModel, activation, dense, layer_norm
from .config import POOLINGS, BertConfig
from .crf import CRF
from .fused_ops import Dropout, LayerNormDropout, RowMatMul


def gather_positions(sequence: Tensor, positions: Tensor) -> Tensor:
    """sequence float [B, S, H], positions int32 [B, P] -> float [B, P, H]."""
    b, s, h = sequence.shape
    offsets = (ops.arange(b, dtype=ms.int32) * s).reshape(b, 1)  # (B, 1)
    flat = (positions.astype(ms.int32) + offsets).reshape(-1)  # (B*P,)
    return ops.gather(sequence.reshape(b * s, h), flat, 0).reshape(b, -1, h)


class BertPredictionHeadTransform(nn.Cell):
    """Dense + activation + LayerNorm before the MLM decoder (the LayerNorm's parameters are
    ``LayerNorm.gamma`` / ``.beta``; on CPU it runs as the fused kernel, without dropout)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = dense(config.hidden_size, config.hidden_size, config)
        self.transform_act_fn = activation(config.hidden_act)
        self.LayerNorm = layer_norm(config)
        self.norm = LayerNormDropout(0.0, config.layer_norm_eps)

    def construct(self, hidden_states: Tensor) -> Tensor:
        x = self.transform_act_fn(self.dense(hidden_states)).astype(ms.float32)
        return self.norm(x, self.LayerNorm.gamma, self.LayerNorm.beta)


class BertLMPredictionHead(nn.Cell):
    """Masked-LM head: transform, then a decoder tied to the word embeddings plus its own bias [V]."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.bias = Parameter(ops.zeros((config.vocab_size,), ms.float32), name="bias")
        self.compute_type = ms.float16 if config.compute_type == "float16" else ms.float32
        # a 2-D product against the [V, H] table (the broadcast 3-D form is ~6x slower on CPU); on CPU
        # oneDNN's sgemm, about 10% faster than MatMul at this shape, forward and backward
        self.matmul = RowMatMul(self.compute_type)

    def construct(self, hidden_states: Tensor, embedding_table: Tensor) -> Tensor:
        """hidden_states [B, P, H], embedding_table [V, H] -> float32 logits [B, P, V]."""
        b, p, _ = hidden_states.shape
        return (self.decode(hidden_states, embedding_table) + self.bias).reshape(b, p, -1)

    def decode(self, hidden_states: Tensor, embedding_table: Tensor) -> Tensor:
        """hidden_states [B, P, H], embedding_table [V, H] -> float32 logits [B*P, V] before ``bias``
        (for a loss that adds the bias itself, :class:`~src.fused_ops.SoftmaxCrossEntropy`).

        Every row is computed, also prediction slots of weight 0: there are few, and leaving them out
        would cost a copy of the [B*P, V] product."""
        b, p, h = hidden_states.shape
        x = self.transform(hidden_states).reshape(b * p, h)
        rows = ops.ones((b * p,), ms.int32)
        return self.matmul(x, embedding_table, rows).astype(ms.float32)  # (B*P, V)


class BertPreTrainingHeads(nn.Cell):
    """MLM predictions on gathered positions and the next-sentence classifier on the pooled output."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Dense(config.hidden_size, 2, weight_init=TruncatedNormal(config.initializer_range))

    def construct(self, sequence_output: Tensor, pooled_output: Tensor, embedding_table: Tensor):
        return self.predictions(sequence_output, embedding_table), self.seq_relationship(pooled_output)


class BertForPreTraining(nn.Cell):
    """BERT/NEZHA with the MLM and NSP heads (``bert.*`` and ``cls.*`` parameters).

    Inputs:
        input_ids, input_mask, segment_ids: int32 [B, S].
        masked_lm_positions: int32 [B, P], positions whose MLM logits are computed.

    Outputs:
        ``(mlm_logits, nsp_logits)``: float32 [B, P, V] and [B, 2].
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=True)
        self.cls = BertPreTrainingHeads(config)

    def construct(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor, masked_lm_positions: Tensor):
        return pretraining_logits(self.bert, self.cls, input_ids, input_mask, segment_ids, masked_lm_positions)


def pretraining_logits(bert: BertModel, cls: BertPreTrainingHeads, input_ids: Tensor, input_mask: Tensor,
                       segment_ids: Tensor, masked_lm_positions: Tensor):
    """MLM logits at the gathered positions [B, P, V] and NSP logits [B, 2] (for the pretraining
    network and for cells that evaluate it)."""
    sequence_output, pooled_output = bert(input_ids, input_mask, segment_ids)
    masked_output = gather_positions(sequence_output, masked_lm_positions)  # (B, P, H)
    return cls(masked_output, pooled_output, bert.embeddings.word_embeddings.embedding_table)


def masked_mean(sequence: Tensor, input_mask: Tensor) -> Tensor:
    """sequence float [B, S, H], input_mask int [B, S] (1 = token) -> the mean over the tokens, float [B, H]."""
    mask = input_mask.astype(sequence.dtype).expand_dims(-1)  # (B, S, 1)
    return (sequence * mask).sum(axis=1) / ops.maximum(mask.sum(axis=1), 1.0)


class BertForSequenceClassification(nn.Cell):
    """Dropout and a linear classifier (or regressor when ``num_labels == 1``) on a sentence vector.

    ``pooling`` chooses the sentence vector: ``"cls"`` (BERT's, the default) is the pooler's
    tanh(dense) of the [CLS] state, pretrained by next-sentence prediction; ``"mean"`` is the mean
    of the last layer over the real tokens (no pooler parameters).

    Outputs float32 logits [B, C].
    """

    def __init__(self, config: BertConfig, num_labels: int, dropout_prob: float | None = None,
                 pooling: str = "cls"):
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be at least 1, got {num_labels}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        self.bert = BertModel(config, add_pooling_layer=pooling == "cls")
        p = config.hidden_dropout_prob if dropout_prob is None else dropout_prob
        self.dropout = Dropout(p)
        self.classifier = nn.Dense(config.hidden_size, num_labels,
                                   weight_init=TruncatedNormal(config.initializer_range))

    def sentence_vector(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor) -> Tensor:
        """The classifier's input before dropout, float [B, H]."""
        sequence_output, pooled_output = self.bert(input_ids, input_mask, segment_ids)
        if self.pooling == "mean":
            return masked_mean(sequence_output, input_mask)
        return pooled_output

    def construct(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.sentence_vector(input_ids, input_mask, segment_ids)))


class BertForTokenClassification(nn.Cell):
    """Dropout and a linear tag classifier on every position of the last layer, optionally with a
    linear-chain CRF over the tag scores (``crf.*`` parameters, pytorch-crf's names).

    Args:
        config: the model.
        num_labels: C, the number of tags (``O`` is id 0).
        dropout_prob: dropout before the classifier (None: ``config.hidden_dropout_prob``).
        use_crf: add a :class:`~src.crf.CRF` (decoding by Viterbi) instead of a per-token argmax.
        crf_seed: seed of the CRF's initial scores.

    Outputs (``construct``): float32 emissions [B, S, C].
    """

    def __init__(self, config: BertConfig, num_labels: int, dropout_prob: float | None = None,
                 use_crf: bool = False, crf_seed: int = 0):
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be at least 1, got {num_labels}")
        self.num_labels = num_labels
        self.use_crf = use_crf
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.hidden_dropout_prob if dropout_prob is None else dropout_prob
        self.dropout = Dropout(p)
        self.classifier = nn.Dense(config.hidden_size, num_labels,
                                   weight_init=TruncatedNormal(config.initializer_range))
        self.crf = CRF(num_labels, seed=crf_seed) if use_crf else None

    def emissions(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor) -> Tensor:
        """float32 tag scores [B, S, C] (the CRF's emissions)."""
        sequence_output, _ = self.bert(input_ids, input_mask, segment_ids)  # (B, S, H)
        return self.classifier(self.dropout(sequence_output)).astype(ms.float32)  # (B, S, C)

    def construct(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor) -> Tensor:
        return self.emissions(input_ids, input_mask, segment_ids)

    def decode(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor, label_mask: Tensor) -> Tensor:
        """int32 tag ids [B, S]: Viterbi over the ``label_mask`` positions (CRF) or the argmax per
        position; 0 where ``label_mask`` is 0."""
        emissions = self.emissions(input_ids, input_mask, segment_ids)
        if self.use_crf:
            return self.crf.decode(emissions, label_mask)
        on = ops.not_equal(label_mask.astype(ms.float32), 0.0)
        return ops.select(on, emissions.argmax(-1).astype(ms.int32), ops.zeros_like(label_mask.astype(ms.int32)))


class BertForQuestionAnswering(nn.Cell):
    """Extractive QA: a linear layer on every position of the last layer gives a start and an end
    score (``qa_outputs``, HuggingFace's name; row 0 start, row 1 end).

    Args:
        config: the model.

    Outputs (``construct``): float32 start logits [B, S] and end logits [B, S].
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Dense(config.hidden_size, 2, weight_init=TruncatedNormal(config.initializer_range))

    def span_logits(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor):
        sequence_output, _ = self.bert(input_ids, input_mask, segment_ids)  # (B, S, H)
        logits = self.qa_outputs(sequence_output).astype(ms.float32)  # (B, S, 2)
        return logits[:, :, 0], logits[:, :, 1]

    def construct(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor):
        return self.span_logits(input_ids, input_mask, segment_ids)
