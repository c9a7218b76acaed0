"""Checkpoints of the MindSpore model zoo's BERT and NEZHA (``official/nlp/Bert``), in and out.

The zoo names its parameters after its own cells; :func:`convert_zoo` renames them to this
project's canonical names (:mod:`src.checkpoint`) and :func:`to_zoo_state` writes them back:

=================================================================  =============================================
zoo (``P`` = ``bert.bert.``, ``network.bert.bert.`` with the       canonical
bucket wrapper; heads under ``P`` minus its last ``bert.``)
=================================================================  =============================================
``P bert_embedding_lookup.embedding_table``                         ``bert.embeddings.word_embeddings.embedding_table``
``P bert_embedding_postprocessor.token_type_embedding.embedding_table``  ``bert.embeddings.token_type_embeddings...``
  (older zoo: ``P bert_embedding_postprocessor.embedding_table``)
``P bert_embedding_postprocessor.full_position_embedding.embedding_table``  ``bert.embeddings.position_embeddings...``
  (older zoo: ``P bert_embedding_postprocessor.full_position_embeddings``)
``P bert_embedding_postprocessor.layernorm.{gamma,beta}``           ``bert.embeddings.LayerNorm.{gamma,beta}``
``P bert_encoder.layers.N.attention.attention.query_layer.*``       ``bert.encoder.layer.N.attention.self.query.*``
  (``key_layer``, ``value_layer`` alike)
``P ...layers.N.attention.attention._generate_relative_positions_embeddings.embeddings_table``
                                                                    ``...attention.self.relative_positions_embeddings``
``P ...layers.N.attention.output.{dense,layernorm}.*``              ``...attention.output.{dense,LayerNorm}.*``
``P ...layers.N.intermediate.{weight,bias}``                        ``...intermediate.dense.{weight,bias}``
``P ...layers.N.output.{dense,layernorm}.*``                        ``...output.{dense,LayerNorm}.*``
``P dense.*`` (pooler)                                              ``bert.pooler.dense.*``
``bert.cls1.dense.*``, ``bert.cls1.layernorm.*``                    ``cls.predictions.transform.{dense,LayerNorm}.*``
``bert.cls1.output_bias``                                           ``cls.predictions.bias``
``bert.cls2.dense.*`` (next sentence)                               ``cls.seq_relationship.*``
``bert.dense_1.*`` (classifier, NER)                                ``classifier.*``
``bert.dense1.*`` (SQuAD; row 0 start, row 1 end)                   ``qa_outputs.*``
``loss.transitions`` (CRF)                                          ``crf.{,start_,end_}transitions``
=================================================================  =============================================

The zoo's CRF keeps one [T+2, T+2] matrix indexed ``[to, from]`` with START (row/column T) and
STOP (T+1) appended, and its NER classifier then has T+2 outputs. pytorch-crf's parameters (this
project's, :mod:`src.crf`) are its parts: ``transitions[i, j] = Z[j, i]``, ``start[j] = Z[j, START]``,
``end[i] = Z[STOP, i]``. The cells with no counterpart (transitions into START, out of STOP, and
START -> STOP, which only an empty sequence uses) and the classifier's START/STOP rows are
reported; written back they take the zoo's initial values (-10000 for the impossible
transitions, 0 for the two classifier rows), which leaves every path score of the zoo's CRF as it
was. A NEZHA checkpoint of the zoo also carries an absolute position table that its model never
reads: reported, not converted.

The zoo's numerics (:func:`zoo_bert_config`): GELU is MindSpore's default tanh approximation
(``gelu_new`` here), LayerNorm's epsilon is MindSpore's default 1e-7, NEZHA's relative table is
learned with K = 16. Optimizer moments and training counters are reported as skipped.
"""
from __future__ import annotations

import logging
import re
from typing import Mapping, Optional

import numpy as np

from .checkpoint import BACKBONE, TRAINING_PREFIXES, CheckpointError, ConvertedCheckpoint, add_converted

logger = logging.getLogger(__name__)

ZOO_MAX_RELATIVE_POSITION = 16  # hard-coded in the zoo's NEZHA
ZOO_LAYER_NORM_EPS = 1e-7  # MindSpore nn.LayerNorm's default
ZOO_IMPOSSIBLE = -10000.0  # the zoo CRF's initial score of transitions into START and out of STOP
ZOO_BACKBONE = "bert.bert."
_MARKER = "bert_embedding_lookup.embedding_table"

# training counters the zoo's training cells save (its optimizer moments: checkpoint.TRAINING_PREFIXES)
_ZOO_STATE_NAMES = ("global_step", "loss_scale", "scale_sense", "current_iterator_step", "last_overflow_iterator_step",
                    "local_step", "accu_overflow", "accu_loss", "total_num", "start_num", "end_num", "learning_rate",
                    "epoch_num", "step_num")

# backbone leaves after P: zoo -> canonical (without "bert."); layer paths are handled by _LAYER
_EMBEDDINGS = {
    "bert_embedding_lookup.embedding_table": "embeddings.word_embeddings.embedding_table",
    "bert_embedding_postprocessor.token_type_embedding.embedding_table":
        "embeddings.token_type_embeddings.embedding_table",
    "bert_embedding_postprocessor.embedding_table": "embeddings.token_type_embeddings.embedding_table",
    "bert_embedding_postprocessor.full_position_embedding.embedding_table":
        "embeddings.position_embeddings.embedding_table",
    "bert_embedding_postprocessor.full_position_embeddings": "embeddings.position_embeddings.embedding_table",
    "bert_embedding_postprocessor.layernorm.gamma": "embeddings.LayerNorm.gamma",
    "bert_embedding_postprocessor.layernorm.beta": "embeddings.LayerNorm.beta",
    "dense.weight": "pooler.dense.weight",
    "dense.bias": "pooler.dense.bias",
}
# inside bert_encoder.layers.N. -> inside encoder.layer.N.
_LAYER = {
    "attention.attention.query_layer.": "attention.self.query.",
    "attention.attention.key_layer.": "attention.self.key.",
    "attention.attention.value_layer.": "attention.self.value.",
    "attention.attention._generate_relative_positions_embeddings.embeddings_table":
        "attention.self.relative_positions_embeddings",
    "attention.output.dense.": "attention.output.dense.",
    "attention.output.layernorm.": "attention.output.LayerNorm.",
    "intermediate.": "intermediate.dense.",
    "output.dense.": "output.dense.",
    "output.layernorm.": "output.LayerNorm.",
}
# heads, after the head prefix ("bert." under the top cell)
_HEADS = {
    "cls1.dense.": "cls.predictions.transform.dense.",
    "cls1.layernorm.": "cls.predictions.transform.LayerNorm.",
    "cls1.output_bias": "cls.predictions.bias",
    "cls2.dense.": "cls.seq_relationship.",
    "dense_1.": "classifier.",
    "dense1.": "qa_outputs.",
}
_CRF_KEY = "loss.transitions"
_POSITIONS = "embeddings.position_embeddings.embedding_table"
_NEWER_SPELLING = {  # the current zoo's spelling of the two older embedding names
    "bert_embedding_postprocessor.embedding_table": "bert_embedding_postprocessor.token_type_embedding.embedding_table",
    "bert_embedding_postprocessor.full_position_embeddings":
        "bert_embedding_postprocessor.full_position_embedding.embedding_table",
}


def is_zoo_checkpoint(keys) -> bool:
    """Whether parameter names are the MindSpore model zoo's (its word-embedding name is unique to it)."""
    return any(k.endswith(_MARKER) for k in keys)


def _rename(leaf: str, table: Mapping[str, str]) -> Optional[str]:
    """``leaf`` with the first matching key of ``table`` (a prefix, or the whole leaf) replaced."""
    for zoo, ours in table.items():
        if leaf == zoo or (zoo.endswith(".") and leaf.startswith(zoo)):
            return ours + leaf[len(zoo):]
    return None


def _backbone_name(leaf: str) -> Optional[str]:
    """A key after the backbone prefix -> its canonical name (with ``bert.``), or None."""
    found = re.match(r"bert_encoder\.layers\.(\d+)\.(.+)$", leaf)
    if found:
        inner = _rename(found.group(2), _LAYER)
        return None if inner is None else f"{BACKBONE}encoder.layer.{found.group(1)}.{inner}"
    name = _EMBEDDINGS.get(leaf)
    return None if name is None else BACKBONE + name


def convert_zoo(state: Mapping[str, np.ndarray], source: str) -> ConvertedCheckpoint:
    """A zoo checkpoint (pretraining, classifier, NER with or without CRF, SQuAD; BERT or NEZHA)
    -> canonical names. Every key is converted or listed in ``skipped`` with its reason."""
    out = ConvertedCheckpoint({}, source, "mindspore-zoo")
    for key in state:
        if key.startswith(TRAINING_PREFIXES) or key.rsplit(".", 1)[-1] in _ZOO_STATE_NAMES:
            out.skipped[key] = "optimizer or training state"
    markers = [k for k in state if k.endswith(_MARKER) and k not in out.skipped]
    if len(markers) != 1:
        raise CheckpointError(f"{source}: expected one '*{_MARKER}' key in a zoo checkpoint, found {markers}")
    backbone = markers[0][: -len(_MARKER)]  # e.g. "bert.bert." or "network.bert.bert."
    if not backbone.endswith("bert."):
        raise CheckpointError(f"{source}: the zoo's encoder sits under a 'bert.' cell, found {markers[0]!r}")
    heads = backbone[: -len("bert.")]  # e.g. "bert." (the task cell holding the encoder and the heads)
    top = heads[: -len("bert.")] if heads.endswith("bert.") else ""  # the loss cell's prefix
    nezha = any("_generate_relative_positions_embeddings" in k for k in state)
    crf = state.get(top + _CRF_KEY)
    for key, value in state.items():
        if key in out.skipped:
            continue
        value = np.asarray(value)
        name = None
        if key.startswith(backbone):
            name = _backbone_name(key[len(backbone):])
            if name is not None and nezha and name == BACKBONE + _POSITIONS:
                out.skipped[key] = "NEZHA: the zoo keeps an absolute position table its model never reads"
                continue
        elif key.startswith(heads):
            name = _rename(key[len(heads):], _HEADS)
        if name is not None:
            if name.startswith("classifier.") and crf is not None:
                value = _classifier_without_crf_tags(out, key, value, crf.shape[0] - 2)
            add_converted(out, name, key, value)
        elif key == top + _CRF_KEY:
            _split_crf(out, key, value)
        else:
            out.skipped[key] = "not a parameter of the zoo's BERT/NEZHA networks"
    return out


def _classifier_without_crf_tags(out: ConvertedCheckpoint, key: str, value: np.ndarray, tags: int) -> np.ndarray:
    """The zoo's NER classifier with a CRF scores T+2 tags (START and STOP last): keep the first T."""
    if value.shape[0] != tags + 2:
        raise CheckpointError(f"{out.source}: {key!r} has {value.shape[0]} rows but the CRF has {tags} tags + "
                              f"START/STOP")
    out.skipped[f"{key}[{tags}:{tags + 2}]"] = "scores of the CRF's START/STOP tags (no counterpart here)"
    return np.ascontiguousarray(value[:tags])


def _split_crf(out: ConvertedCheckpoint, key: str, z: np.ndarray) -> None:
    if z.ndim != 2 or z.shape[0] != z.shape[1] or z.shape[0] < 3:
        raise CheckpointError(f"{out.source}: {key!r} should be [T+2, T+2] with START/STOP last, got {z.shape}")
    t = z.shape[0] - 2
    start, stop = t, t + 1
    add_converted(out, "crf.transitions", key, np.ascontiguousarray(z[:t, :t].T))  # [to, from] -> [from, to]
    add_converted(out, "crf.start_transitions", key, np.ascontiguousarray(z[:t, start]))
    add_converted(out, "crf.end_transitions", key, np.ascontiguousarray(z[stop, :t]))
    out.skipped[f"{key}[START row, STOP column, STOP<-START]"] = (
        "transitions into START, out of STOP and START->STOP (no counterpart here; only the zoo's empty "
        "sequence uses the last)")


def zoo_bert_config(ckpt: ConvertedCheckpoint, num_attention_heads: Optional[int] = None, **overrides):
    """A :class:`~src.config.BertConfig` that reproduces the zoo's model, from the tensor shapes.

    Sizes come from the shapes; NEZHA's head count from its relative table ([2K+1, H/heads]); a
    BERT checkpoint does not say its head count, so it is ``num_attention_heads`` or H/64 (every
    zoo config: base 12, large 16). The zoo's numerics: tanh GELU, LayerNorm epsilon 1e-7, NEZHA's
    learned K = 16 table.
    """
    from .config import BertConfig

    params = ckpt.params
    words = params.get(BACKBONE + "embeddings.word_embeddings.embedding_table")
    if words is None:
        raise CheckpointError(f"{ckpt.source}: no word embeddings, cannot infer the model's sizes")
    vocab, hidden = words.shape
    layers = {int(m.group(1)) for n in params for m in [re.match(r"bert\.encoder\.layer\.(\d+)\.", n)] if m}
    first = f"{BACKBONE}encoder.layer.0."
    values = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=len(layers),
                  intermediate_size=params[first + "intermediate.dense.weight"].shape[0],
                  type_vocab_size=params[BACKBONE + "embeddings.token_type_embeddings.embedding_table"].shape[0],
                  hidden_act="gelu_new", layer_norm_eps=ZOO_LAYER_NORM_EPS)
    table = params.get(first + "attention.self.relative_positions_embeddings")
    positions = params.get(BACKBONE + _POSITIONS)
    if positions is not None:
        values["max_position_embeddings"] = positions.shape[0]
    if table is not None:
        values.update(use_relative_positions=True, relative_position_type="learned",
                      max_relative_position=(table.shape[0] - 1) // 2)
        values["num_attention_heads"] = hidden // table.shape[1]
    else:
        values["num_attention_heads"] = num_attention_heads or max(1, hidden // 64)
        if num_attention_heads is None:
            logger.warning("%s: a BERT checkpoint does not record its head count; assuming %d (hidden_size / 64, "
                           "as every zoo config); pass a config to set it", ckpt.source, values["num_attention_heads"])
    if num_attention_heads is not None:
        values["num_attention_heads"] = num_attention_heads
    values["seq_length"] = min(128, values.get("max_position_embeddings", 512))
    values.update(overrides)
    return BertConfig(**values)


def _layer_to_zoo(inner: str) -> Optional[str]:
    return _rename(inner, {ours: zoo for zoo, ours in _LAYER.items()})


def _canonical_to_zoo_name(name: str) -> Optional[str]:
    if name.startswith(BACKBONE):
        leaf = name[len(BACKBONE):]
        found = re.match(r"encoder\.layer\.(\d+)\.(.+)$", leaf)
        if found:
            inner = _layer_to_zoo(found.group(2))
            return None if inner is None else f"{ZOO_BACKBONE}bert_encoder.layers.{found.group(1)}.{inner}"
        reverse = {ours: zoo for zoo, ours in _EMBEDDINGS.items() if zoo not in _NEWER_SPELLING}
        return None if leaf not in reverse else ZOO_BACKBONE + reverse[leaf]
    renamed = _rename(name, {ours: zoo for zoo, ours in _HEADS.items()})
    return None if renamed is None else "bert." + renamed


def to_zoo_state(params: Mapping[str, np.ndarray], config) -> dict[str, np.ndarray]:
    """Canonical parameters -> the zoo's names (current spelling), for the zoo's networks to load.

    NEZHA needs the zoo's learned K = 16 table: a learned table of another K cannot be written, and
    a functional (sinusoid) table with K = 16 is written as the learned table's values (the same
    model). Raises :class:`CheckpointError` for what the zoo cannot represent.
    """
    from .bert_model import sinusoid_relative_table

    out: dict[str, np.ndarray] = {}
    tags = params["crf.transitions"].shape[0] if "crf.transitions" in params else None
    for name, value in params.items():
        if name.startswith("crf."):
            continue
        zoo = _canonical_to_zoo_name(name)
        if zoo is None:
            raise CheckpointError(f"{name!r} has no counterpart in the zoo's networks")
        value = np.asarray(value)
        if name.startswith("classifier.") and tags is not None:  # the zoo's CRF tagger scores START and STOP too
            value = np.concatenate([value, np.zeros((2,) + value.shape[1:], value.dtype)])
        out[zoo] = np.ascontiguousarray(value)
    if tags is not None:
        z = np.full((tags + 2, tags + 2), ZOO_IMPOSSIBLE, np.float32)
        z[:tags, :tags] = np.asarray(params["crf.transitions"]).T
        z[:tags, tags] = params["crf.start_transitions"]
        z[tags + 1, :tags] = params["crf.end_transitions"]
        out[_CRF_KEY] = z
    if config.use_relative_positions:
        if config.max_relative_position != ZOO_MAX_RELATIVE_POSITION:
            raise CheckpointError(f"the zoo's NEZHA has max_relative_position {ZOO_MAX_RELATIVE_POSITION} "
                                  f"hard-coded; this model has {config.max_relative_position}")
        if config.relative_position_type == "functional":
            table = sinusoid_relative_table(config.max_relative_position, config.head_dim)
            for layer in range(config.num_hidden_layers):
                out[f"{ZOO_BACKBONE}bert_encoder.layers.{layer}.attention.attention."
                    "_generate_relative_positions_embeddings.embeddings_table"] = table
    return out


def zoo_numerics_warnings(config) -> list[str]:
    """What makes the zoo compute a different function from this model (written, not refused)."""
    notes = []
    if config.hidden_act not in ("gelu_new", "gelu_tanh"):
        notes.append(f"hidden_act is {config.hidden_act!r}; the zoo computes the tanh-approximate GELU")
    if config.layer_norm_eps != ZOO_LAYER_NORM_EPS:
        notes.append(f"layer_norm_eps is {config.layer_norm_eps:g}; the zoo's LayerNorm uses {ZOO_LAYER_NORM_EPS:g}")
    return notes
