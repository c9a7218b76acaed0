"""BERT and NEZHA encoder cells.

Cell and attribute names mirror the HuggingFace / Google checkpoints
(``embeddings.word_embeddings``, ``encoder.layer.{i}.attention.self.query`` ...), so checkpoint
conversion is a table of leaf renames (see ``src/checkpoint.py``).

Shape letters used in comments:
    B batch size        S sequence length    H hidden size         N attention heads
    D head size (H/N)   I intermediate size  V vocabulary size     R relative-position rows (2K+1)
"""
from __future__ import annotations

import math

import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import TruncatedNormal, initializer

from .config import BertConfig
from .fused_ops import (BiasGelu, DropoutAddLayerNorm, LayerNormDropout, RelativeSelfAttention, RowMatMul,
                        SelfAttention)

MS_DTYPES = {"float32": ms.float32, "float16": ms.float16}


def activation(name: str) -> nn.Cell:
    """The feed-forward activation cell for a ``BertConfig.hidden_act`` name."""
    if name == "gelu":
        return nn.GELU(approximate=False)
    if name in ("gelu_new", "gelu_tanh"):
        return nn.GELU(approximate=True)
    if name == "gelu_fast":
        return nn.FastGelu()
    if name == "relu":
        return nn.ReLU()
    if name == "silu":
        return nn.SiLU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}")


def dense(in_channels: int, out_channels: int, config: BertConfig) -> nn.Dense:
    """A Dense layer with truncated-normal weights that runs in ``config.compute_type``."""
    cell = nn.Dense(in_channels, out_channels, weight_init=TruncatedNormal(config.initializer_range))
    if config.compute_type == "float16":
        cell.to_float(ms.float16)
    return cell


def layer_norm(config: BertConfig) -> nn.LayerNorm:
    return nn.LayerNorm((config.hidden_size,), epsilon=config.layer_norm_eps)


def relative_position_index(length: int, max_relative_position: int) -> np.ndarray:
    """``rel[i, j] = clip(j - i, -K, K) + K``, int32 [length, length], values 0..2K."""
    pos = np.arange(length)
    return (np.clip(pos[None, :] - pos[:, None], -max_relative_position, max_relative_position)
            + max_relative_position).astype(np.int32)


def sinusoid_relative_table(max_relative_position: int, depth: int) -> np.ndarray:
    """NEZHA's functional table, float32 [2K+1, depth]: sin on even and cos on odd columns."""
    rows = 2 * max_relative_position + 1
    position = np.arange(rows, dtype=np.float32)[:, None]
    div_term = np.exp(np.arange(0, depth, 2, dtype=np.float32) * np.float32(-math.log(10000.0) / depth))
    table = np.zeros((rows, depth), dtype=np.float32)
    table[:, 0::2] = np.sin(position * div_term)
    table[:, 1::2] = np.cos(position * div_term)[:, : depth // 2]
    return table


class BertEmbeddings(nn.Cell):
    """Word + segment (+ absolute position, BERT only) embeddings, then LayerNorm and dropout.

    Args:
        config: model configuration. With ``use_relative_positions`` (NEZHA) there is no
            absolute position table.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        init = TruncatedNormal(config.initializer_range)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, embedding_table=init)
        self.use_absolute_positions = not config.use_relative_positions
        if self.use_absolute_positions:
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                    embedding_table=init)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size, embedding_table=init)
        self.LayerNorm = layer_norm(config)
        self.norm_dropout = LayerNormDropout(config.hidden_dropout_prob, config.layer_norm_eps)

    def construct(self, input_ids: Tensor, segment_ids: Tensor) -> Tensor:
        """input_ids, segment_ids: int32 [B, S] -> float32 [B, S, H]."""
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(segment_ids)
        if self.use_absolute_positions:
            seq_length = input_ids.shape[1]
            x = x + self.position_embeddings.embedding_table[:seq_length].expand_dims(0)  # (1, S, H)
        return self.norm_dropout(x.astype(ms.float32), self.LayerNorm.gamma, self.LayerNorm.beta)


class BertSelfAttention(nn.Cell):
    """Multi-head self-attention, with NEZHA relative positions when configured.

    ``scores = (Q Kᵀ [+ Q Rkᵀ]) / sqrt(D) + mask_bias``; ``context = P V [+ P Rv]``, where the
    same relative table gives Rk and Rv (NEZHA). Q, K and V come from one projection of the real
    tokens' rows (:class:`~src.fused_ops.RowMatMul`); the rest is one fused operator,
    :class:`~src.fused_ops.SelfAttention` or, for NEZHA, :class:`~src.fused_ops.RelativeSelfAttention`.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.hidden_size = config.hidden_size
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.compute_type = MS_DTYPES[config.compute_type]
        self.query = dense(config.hidden_size, config.hidden_size, config)
        self.key = dense(config.hidden_size, config.hidden_size, config)
        self.value = dense(config.hidden_size, config.hidden_size, config)
        self.use_relative_positions = config.use_relative_positions
        self.qkv_matmul = RowMatMul(self.compute_type)
        # the heads, biases, mask, softmax, dropout and P V (+ the relative terms) in one operator
        if not self.use_relative_positions:  # BERT
            self.attention = SelfAttention(self.num_heads, config.attention_probs_dropout_prob, self.scale,
                                           self.compute_type)
        else:  # NEZHA: any sequence length works (rel(i, j) is computed, not read from a table of lengths)
            learned = config.relative_position_type == "learned"
            self.attention = RelativeSelfAttention(self.num_heads, config.max_relative_position,
                                                   config.attention_probs_dropout_prob, self.scale, self.compute_type,
                                                   table_grad=learned)
            table = sinusoid_relative_table(config.max_relative_position, self.head_dim)
            if learned:  # zoo NEZHA: a trainable [R, D] table
                self.relative_positions_embeddings = Parameter(
                    initializer(TruncatedNormal(config.initializer_range), table.shape, ms.float32),
                    name="relative_positions_embeddings")
            else:  # released NEZHA: a fixed sinusoid, a constant rather than a weight
                self.relative_positions_embeddings = Tensor(table)

    def construct(self, hidden_states: Tensor, mask_bias: Tensor, rows: Tensor) -> Tensor:
        """hidden_states float [B, S, H]; mask_bias float32 [B, 1, 1, S] (0 keep, -10000 drop); rows
        int32 [B * S] (1 real token, 0 padding) -> [B, S, H]."""
        # Q|K|V from one matmul against the three weights stacked: (B, S, 3H)
        weight = ops.concat((self.query.weight, self.key.weight, self.value.weight))
        bias = ops.concat((self.query.bias, self.key.bias, self.value.bias))
        qkv = self.qkv_matmul(hidden_states, weight, rows)
        if self.use_relative_positions:
            return self.attention(qkv, bias, mask_bias, self.relative_positions_embeddings)
        return self.attention(qkv, bias, mask_bias)


class BertSelfOutput(nn.Cell):
    """Projection of the attention context, dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = dense(config.hidden_size, config.hidden_size, config)
        self.LayerNorm = layer_norm(config)
        self.dropout_add_norm = DropoutAddLayerNorm(config.hidden_dropout_prob, config.layer_norm_eps)
        self.matmul = RowMatMul(MS_DTYPES[config.compute_type])

    def construct(self, context: Tensor, residual: Tensor, rows: Tensor) -> Tensor:
        """LayerNorm(dropout(context W + b) + residual): [B, S, H] -> float32 [B, S, H]"""
        return self.dropout_add_norm(self.matmul(context, self.dense.weight, rows), self.dense.bias,
                                     residual, self.LayerNorm.gamma, self.LayerNorm.beta)


class BertAttention(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def construct(self, hidden_states: Tensor, mask_bias: Tensor, rows: Tensor) -> Tensor:
        return self.output(self.self(hidden_states, mask_bias, rows), hidden_states, rows)


class BertIntermediate(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = dense(config.hidden_size, config.intermediate_size, config)
        self.fused_gelu = config.hidden_act == "gelu"
        if self.fused_gelu:  # the Dense bias and the exact GELU in one operator
            self.matmul = RowMatMul(MS_DTYPES[config.compute_type])
            self.bias_gelu = BiasGelu()
        else:
            self.intermediate_act_fn = activation(config.hidden_act)

    def construct(self, hidden_states: Tensor, rows: Tensor) -> Tensor:
        """[B, S, H] -> [B, S, I]"""
        if self.fused_gelu:
            return self.bias_gelu(self.matmul(hidden_states, self.dense.weight, rows), self.dense.bias)
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(nn.Cell):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = dense(config.intermediate_size, config.hidden_size, config)
        self.LayerNorm = layer_norm(config)
        self.dropout_add_norm = DropoutAddLayerNorm(config.hidden_dropout_prob, config.layer_norm_eps)
        self.matmul = RowMatMul(MS_DTYPES[config.compute_type])

    def construct(self, intermediate: Tensor, residual: Tensor, rows: Tensor) -> Tensor:
        """LayerNorm(dropout(intermediate W + b) + residual): [B, S, I], float32 [B, S, H] -> float32 [B, S, H]"""
        return self.dropout_add_norm(self.matmul(intermediate, self.dense.weight, rows),
                                     self.dense.bias, residual, self.LayerNorm.gamma, self.LayerNorm.beta)


class BertLayer(nn.Cell):
    """One Transformer block: self-attention then feed-forward, each with residual + LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def construct(self, hidden_states: Tensor, mask_bias: Tensor, rows: Tensor) -> Tensor:
        attention_output = self.attention(hidden_states, mask_bias, rows)
        return self.output(self.intermediate(attention_output, rows), attention_output, rows)


class BertEncoder(nn.Cell):
    """A stack of ``num_hidden_layers`` :class:`BertLayer`."""

    def __init__(self, config: BertConfig, output_hidden_states: bool = False):
        super().__init__()
        self.layer = nn.CellList([BertLayer(config) for _ in range(config.num_hidden_layers)])
        self.output_hidden_states = output_hidden_states

    def construct(self, hidden_states: Tensor, mask_bias: Tensor, rows: Tensor):
        """Returns the last hidden state [B, S, H] and, if configured, a tuple of the
        embedding output and every layer's output (num_hidden_layers + 1 tensors)."""
        all_states = (hidden_states,)
        for layer in self.layer:
            hidden_states = layer(hidden_states, mask_bias, rows)
            if self.output_hidden_states:
                all_states = all_states + (hidden_states,)
        return hidden_states, all_states


class BertPooler(nn.Cell):
    """tanh(Dense(first token)): [B, S, H] -> [B, H]."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = dense(config.hidden_size, config.hidden_size, config)
        self.activation = nn.Tanh()

    def construct(self, hidden_states: Tensor) -> Tensor:
        return self.activation(self.dense(hidden_states[:, 0])).astype(ms.float32)


class BertModel(nn.Cell):
    """The BERT / NEZHA encoder.

    Args:
        config: model configuration.
        add_pooling_layer: build the pooler (``pooler.dense``) for the pooled output.
        output_hidden_states: also return the embedding output and every layer's output.

    Inputs:
        input_ids: int32 [B, S] token ids.
        input_mask: int32 [B, S], 1 for real tokens, 0 for padding.
        segment_ids: int32 [B, S] token type ids.

    Outputs:
        ``(sequence_output, pooled_output)``, float32 [B, S, H] and [B, H] (pooled is the
        zero-size tensor when there is no pooler); with ``output_hidden_states`` a third
        element, a tuple of ``num_hidden_layers + 1`` float32 [B, S, H] tensors.

    Padding positions (``input_mask`` 0) carry no information: no real token attends to them, and
    on CPU the encoder's projections skip them (:class:`~src.fused_ops.RowMatMul`), so their hidden
    states are not BERT's output for a [PAD] token. Read the outputs at real positions only.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True, output_hidden_states: bool = False):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config, output_hidden_states)
        self.add_pooling_layer = add_pooling_layer
        self.output_hidden_states = output_hidden_states
        if add_pooling_layer:
            self.pooler = BertPooler(config)
        if config.dtype == "float16":
            cast_parameters_to_float16(self)

    def construct(self, input_ids: Tensor, input_mask: Tensor, segment_ids: Tensor):
        mask_bias = (1.0 - input_mask.astype(ms.float32)) * -10000.0
        mask_bias = mask_bias.reshape(input_mask.shape[0], 1, 1, input_mask.shape[1])  # (B, 1, 1, S)
        rows = ops.not_equal(input_mask, 0).astype(ms.int32).reshape(-1)  # (B*S,) the real tokens' rows
        embedding_output = self.embeddings(input_ids, segment_ids)
        sequence_output, all_states = self.encoder(embedding_output, mask_bias, rows)
        if self.add_pooling_layer:
            pooled_output = self.pooler(sequence_output)
        else:
            pooled_output = ops.zeros((input_ids.shape[0], 0), ms.float32)
        if self.output_hidden_states:
            return sequence_output, pooled_output, all_states
        return sequence_output, pooled_output


def cast_parameters_to_float16(network: nn.Cell) -> None:
    """Store every parameter except LayerNorm's in float16 (inference memory saving)."""
    for param in network.get_parameters():
        if ".LayerNorm." in f".{param.name}" or param.dtype != ms.float32:
            continue
        param.set_dtype(ms.float16)
