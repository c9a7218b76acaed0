"""Export a fine-tuned sequence classifier, NER tagger or SQuAD span model to MindIR (or AIR / ONNX) for inference.

The exported graph is :class:`~src.heads.BertForSequenceClassification` in eval mode (no dropout)
with three int32 inputs ``input_ids, input_mask, segment_ids`` of the fixed shape [B, S] given at
export time, and one float32 output, the logits [B, C] (C = 1: a regression score). Load it with
``mindspore.nn.GraphCell(mindspore.load("model.mindir"))`` or MindSpore Lite.

A NER tagger (a run_ner.py run: its config has ``use_crf``; or ``--task ner``) is exported as
:class:`~src.heads.BertForTokenClassification` followed by its decoding, inside the graph:
Viterbi over the CRF, or the argmax per token. Four int32 inputs ``input_ids, input_mask,
segment_ids, label_mask`` [B, S] (``label_mask``: 1 on each word's first piece, as in the records
of tools/create_ner_data.py) and one int32 output, the tag ids [B, S] (0 = ``O`` where
``label_mask`` is 0).

A SQuAD model (a run_squad.py run: its config has ``n_best_size``; or ``--task squad``) is
exported as :class:`~src.heads.BertForQuestionAnswering`: the three int32 inputs and two float32
outputs, the start and the end logits [B, S].

Formats:
    MINDIR: works on every backend (CPU included). Over 1 GiB of parameters (BERT-large in
        float32), MindSpore writes ``NAME_graph.mindir`` plus a ``NAME_variables/`` folder
        instead of ``NAME.mindir``; both are moved into place and the graph file is returned.
    AIR: Ascend only (MindSpore refuses it on other backends); deprecated by MindSpore.
    ONNX: MindSpore's own exporter (deprecated upstream). It has no ``Erf``, so it fails for
        ``hidden_act: gelu`` (exact GELU) and works for the tanh forms (``gelu_new``, ``gelu_tanh``).

The exported network is built with the standard MindSpore operators (``fused_ops.standard_operators``),
never with the C++ kernels compiled on this machine, so the graph runs on any device.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence

import numpy as np

from .config import POOLINGS, BertConfig, ConfigError, from_dict, load_yaml, option, parse_yaml

logger = logging.getLogger(__name__)

FORMATS = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}


class ExportError(RuntimeError):
    """MindSpore could not export the network in the requested format."""


@dataclass
class ExportConfig:
    """export.py: a fine-tuned classifier, NER tagger or SQuAD span model checkpoint -> MindIR / AIR / ONNX."""

    task: Literal["", "classifier", "ner", "squad"] = option(
        "", "what the checkpoint is; empty: ner when run_config has use_crf (a run_ner.py run), squad when it has "
        "n_best_size (a run_squad.py run), else classifier")

    config: str = option("", "model config: a name in configs/ (bert_base) or a YAML path (or use run_config)")
    run_config: str = option("", "config.yaml saved by a fine-tuning run: its model section and num_labels are used")
    checkpoint: str = option("", "fine-tuned checkpoint (bert.* and classifier.* parameters; optimizer state "
                             "is skipped)")
    num_labels: int = option(0, "classifier outputs (1: regression) or tags; 0: from run_config, else from the "
                             "checkpoint")
    use_crf: Optional[bool] = option(None, "ner: decode with the CRF; null: from run_config, else true when the "
                                     "checkpoint has crf.* scores")
    pooling: Literal["", "cls", "mean"] = option("", "the classifier's sentence vector (cls or mean, see "
                                                 "run_classifier.py); empty: from run_config, else cls")
    batch_size: int = option(1, "batch size B of the exported graph (fixed)")
    seq_length: int = option(0, "sequence length S of the exported graph (fixed); 0: the model config's seq_length")
    output: str = option("bert_classifier", "output file; the format's extension (.mindir, .air, .onnx) is "
                         "added when missing")
    format: Literal["MINDIR", "AIR", "ONNX"] = option(
        "MINDIR", "MINDIR (any backend), AIR (Ascend only) or ONNX (not with the exact gelu activation)")
    device_target: Literal["CPU", "GPU", "Ascend"] = option("CPU", "device the graph is compiled for")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}")
        for name in ("num_labels", "seq_length"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0: automatic), got {getattr(self, name)}")


def parse_export_args(argv: Optional[Sequence[str]] = None, description: str = "") -> ExportConfig:
    """``--key value`` options (one per :class:`ExportConfig` field) -> a validated config.

    ``--model`` is accepted for ``--config`` (as in pretrain_eval.py); ``--format`` is case-insensitive.
    """
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(ExportConfig)
    for f in dataclasses.fields(ExportConfig):
        names = [f"--{f.name}", "--model"] if f.name == "config" else [f"--{f.name}"]
        parser.add_argument(*names, dest=f.name, default=argparse.SUPPRESS, metavar=f.name.upper(),
                            help=f"{f.metadata.get('help', '')} (default: {f.default!r})")
    values = vars(parser.parse_args(argv))
    data: dict[str, Any] = {}
    for name, raw in values.items():
        if hints[name] is str:
            data[name] = raw
        elif name == "format":
            data[name] = raw.upper()
        else:
            data[name] = parse_yaml(raw) if raw != "" else raw
    return from_dict(ExportConfig, data, source="command line")


@dataclass
class _ModelSection:
    """Wrapper so a ``model`` entry (config name, YAML path or mapping with ``base``) resolves as in run configs."""

    model: BertConfig = field(default_factory=BertConfig)


def model_config(name: str) -> BertConfig:
    """A model config by name in ``configs/`` (``bert_base``) or YAML path."""
    return from_dict(_ModelSection, {"model": name}, source="--config").model


def read_run_config(path: str | os.PathLike) -> tuple[BertConfig, Optional[int], str]:
    """The model, number of labels and pooling of a fine-tuning run's ``config.yaml``.

    Only the ``model`` section (a mapping, a config name or a path), ``num_labels`` (top level,
    or inside one nested section) and ``pooling`` (top level) are read; other keys are ignored.

    Returns:
        (model config, num_labels or None when the file has none, pooling: "cls" when absent).
    """
    data = load_yaml(path)
    if "model" not in data:
        raise ConfigError(f"run config {path} has no 'model' section (keys: {', '.join(map(str, data)) or 'none'})")
    model = from_dict(_ModelSection, {"model": data["model"]}, source=str(path)).model
    num_labels = data.get("num_labels")
    if num_labels is None:
        nested = [v["num_labels"] for v in data.values() if isinstance(v, Mapping) and "num_labels" in v]
        num_labels = nested[0] if len(nested) == 1 else None
    if num_labels is not None and (isinstance(num_labels, bool) or not isinstance(num_labels, int)
                                   or num_labels < 1):
        raise ConfigError(f"num_labels in {path} must be a positive integer, got {num_labels!r}")
    pooling = data.get("pooling", "cls")
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling in {path} must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    return model, num_labels, pooling


def _head_checkpoint(checkpoint: str | os.PathLike, key: str, what: str):
    """The checkpoint of a fine-tuned ``what``, which must hold parameter ``key``."""
    from .checkpoint import CheckpointError, read_checkpoint

    if not checkpoint:
        raise CheckpointError(f"no checkpoint given: pass --checkpoint FILE (a fine-tuned {what})")
    if not Path(checkpoint).exists():
        raise CheckpointError(f"checkpoint {checkpoint} does not exist")
    ckpt = read_checkpoint(checkpoint)
    if key not in ckpt.params:
        raise CheckpointError(f"{checkpoint} has no {key}: it is not a fine-tuned {what} (a pretraining or "
                              "bare-encoder checkpoint?)")
    return ckpt


def _load_every_parameter(network, ckpt, checkpoint: str | os.PathLike, what: str) -> None:
    from .checkpoint import CheckpointError, load_checkpoint_into

    report = load_checkpoint_into(network, ckpt)
    if report.initialized:
        raise CheckpointError(f"{checkpoint} lacks {len(report.initialized)} parameters of the {what}: "
                              f"{', '.join(report.initialized[:8])}{' ...' if len(report.initialized) > 8 else ''}")
    if report.unused:
        logger.info("%s: %d keys not used by the %s (%s)", checkpoint, len(report.unused), what,
                    ", ".join(sorted(report.unused)[:8]))


def build_classifier(model: BertConfig, num_labels: int, checkpoint: str | os.PathLike, pooling: str = "cls"):
    """A :class:`~src.heads.BertForSequenceClassification` with every parameter from ``checkpoint``, in eval mode.

    Args:
        model: the encoder config.
        num_labels: classifier outputs C; 0 takes it from the checkpoint's ``classifier.weight`` [C, H].
        checkpoint: a fine-tuned checkpoint (any format :func:`~src.checkpoint.read_checkpoint` reads).
        pooling: the sentence vector the classifier was fine-tuned on (``"cls"`` or ``"mean"``).

    Raises:
        CheckpointError: the file is missing or unreadable, a shape differs from the config
            (vocab_size, hidden_size, num_labels), or a parameter of the classifier is not in it.
    """
    from .checkpoint import CheckpointError
    from .fused_ops import standard_operators
    from .heads import BertForSequenceClassification

    ckpt = _head_checkpoint(checkpoint, "classifier.weight", "sequence classifier")
    weight = ckpt.params["classifier.weight"]
    if num_labels == 0:
        num_labels = int(weight.shape[0])
    elif weight.shape[0] != num_labels:
        raise CheckpointError(f"{checkpoint}: the classifier has {weight.shape[0]} outputs, but num_labels "
                              f"is {num_labels}")
    with standard_operators():  # the exported graph must not call kernels compiled on this machine
        network = BertForSequenceClassification(model, num_labels, pooling=pooling)
    _load_every_parameter(network, ckpt, checkpoint, "classifier")
    network.set_train(False)
    return network


def run_task(path: str | os.PathLike) -> tuple[str, Optional[bool]]:
    """``("ner", use_crf)`` for the config.yaml of a run_ner.py run, ``("squad", None)`` for a
    run_squad.py run, else ``("classifier", None)``."""
    data = load_yaml(path)
    if "n_best_size" in data:
        return "squad", None
    if "use_crf" in data:
        if not isinstance(data["use_crf"], bool):
            raise ConfigError(f"use_crf in {path} must be true or false, got {data['use_crf']!r}")
        return "ner", data["use_crf"]
    return "classifier", None


def build_tagger(model: BertConfig, checkpoint: str | os.PathLike, use_crf: Optional[bool] = None,
                 num_labels: int = 0):
    """A Cell ``(input_ids, input_mask, segment_ids, label_mask) -> int32 tags [B, S]``: a
    :class:`~src.heads.BertForTokenClassification` with every parameter from ``checkpoint`` and
    its decoding (Viterbi with the CRF, else argmax), in eval mode.

    Raises:
        CheckpointError: the file is missing or is not a tagger, a shape differs from the config,
            ``use_crf`` asks for a CRF the checkpoint does not have, or a parameter is missing.
    """
    from mindspore import nn

    from .checkpoint import CheckpointError
    from .fused_ops import standard_operators
    from .heads import BertForTokenClassification

    ckpt = _head_checkpoint(checkpoint, "classifier.weight", "tagger")
    weight = ckpt.params["classifier.weight"]
    has_crf = "crf.transitions" in ckpt.params
    if use_crf is None:
        use_crf = has_crf
    elif use_crf and not has_crf:
        raise CheckpointError(f"{checkpoint} has no crf.transitions, but the tagger should decode with a CRF")
    if num_labels and weight.shape[0] != num_labels:
        raise CheckpointError(f"{checkpoint}: the classifier has {weight.shape[0]} tags, but num_labels "
                              f"is {num_labels}")
    with standard_operators():
        tagger = BertForTokenClassification(model, int(weight.shape[0]), use_crf=use_crf)
    _load_every_parameter(tagger, ckpt, checkpoint, "tagger")

    class _Tagger(nn.Cell):
        def __init__(self, network):
            super().__init__(auto_prefix=False)  # keep the checkpoint's parameter names
            self.network = network

        def construct(self, input_ids, input_mask, segment_ids, label_mask):
            return self.network.decode(input_ids, input_mask, segment_ids, label_mask)

    network = _Tagger(tagger)
    network.set_train(False)
    return network


def build_span_model(model: BertConfig, checkpoint: str | os.PathLike):
    """A :class:`~src.heads.BertForQuestionAnswering` (start and end logits) with every parameter
    from ``checkpoint``, in eval mode.

    Raises:
        CheckpointError: the file is missing or has no ``qa_outputs``, a shape differs from the
            config, or a parameter is missing.
    """
    from .fused_ops import standard_operators
    from .heads import BertForQuestionAnswering

    ckpt = _head_checkpoint(checkpoint, "qa_outputs.weight", "question-answering model")
    with standard_operators():
        network = BertForQuestionAnswering(model)
    _load_every_parameter(network, ckpt, checkpoint, "question-answering model")
    network.set_train(False)
    return network


def dummy_inputs(batch_size: int, seq_length: int) -> list:
    """``input_ids, input_mask, segment_ids``: int32 [B, S] tensors fixing the exported shapes."""
    import mindspore as ms

    shape = (batch_size, seq_length)
    return [ms.Tensor(np.zeros(shape, np.int32)), ms.Tensor(np.ones(shape, np.int32)),
            ms.Tensor(np.zeros(shape, np.int32))]


def output_path(output: str | os.PathLike, file_format: str) -> Path:
    """``output`` with the extension of ``file_format`` (added when missing)."""
    if file_format not in FORMATS:
        raise ConfigError(f"unknown export format {file_format!r}; choose one of {', '.join(FORMATS)}")
    path = Path(output)
    suffix = FORMATS[file_format]
    if path.suffix.lower() == suffix:
        return path.with_suffix(suffix)  # MindSpore appends the lower-case extension to anything else
    if path.suffix.lower() in FORMATS.values():
        raise ConfigError(f"output {path} has the extension of another format than {file_format}")
    if not path.name:
        raise ConfigError(f"output {str(output)!r} is not a file name")
    return path.with_name(path.name + suffix)


def export_network(network, inputs: Sequence, output: str | os.PathLike, file_format: str = "MINDIR") -> Path:
    """``mindspore.export`` into a temporary folder beside ``output``, then rename into place.

    A reader never sees a half-written file, and a failed export leaves nothing behind.

    Args:
        network: the Cell, in the mode it should be exported in (``set_train(False)`` for inference).
        inputs: example inputs fixing shapes and dtypes.
        output: target file (extension added when missing, see :func:`output_path`).
        file_format: MINDIR, AIR or ONNX.

    Returns:
        The written file (``NAME_graph.mindir`` when MindSpore splits a model over 1 GiB).
    """
    import mindspore as ms

    final = output_path(output, file_format)
    if file_format == "AIR" and ms.get_context("device_target") != "Ascend":
        raise ExportError(f"AIR export needs the Ascend backend, this is {ms.get_context('device_target')}; "
                          "export MINDIR instead")
    stem = final.name[: -len(FORMATS[file_format])]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{stem}.export-"))
    try:
        try:
            ms.export(network, *inputs, file_name=str(tmp_dir / stem), file_format=file_format)
        except (RuntimeError, ValueError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(f"mindspore.export to {file_format} failed: {first_line}") from err
        written = sorted(tmp_dir.iterdir(), key=lambda p: p.is_file())  # data folders first, the graph file last
        if not written:
            raise ExportError(f"mindspore.export wrote nothing for {final}")
        for item in written:
            target = final.parent / item.name
            if item.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    if final.exists():
        return final
    split_graph = final.with_name(f"{stem}_graph{FORMATS[file_format]}")
    if split_graph.exists():
        return split_graph
    raise ExportError(f"mindspore.export did not write {final} (wrote {', '.join(p.name for p in written)})")


def export_classifier(config: ExportConfig) -> Path:
    """Resolve the model and num_labels, build and load the classifier, export it; returns the file written.

    Raises:
        ConfigError: no or conflicting model configs, a bad seq_length or format.
        CheckpointError: see :func:`build_classifier`.
        ExportError: MindSpore could not export this format on this backend.
    """
    if config.config and config.run_config:
        raise ConfigError("give --config (a model config) or --run_config (a run's config.yaml), not both")
    if not config.config and not config.run_config:
        raise ConfigError("pass --config MODEL (e.g. bert_base) or --run_config RUN_DIR/config.yaml")
    output_path(config.output, config.format)  # fail on a bad name or format before building anything
    num_labels = config.num_labels
    pooling = config.pooling or "cls"
    if config.run_config:
        model, run_labels, run_pooling = read_run_config(config.run_config)
        if num_labels and run_labels and num_labels != run_labels:
            logger.warning("--num_labels %d overrides num_labels %d of %s", num_labels, run_labels, config.run_config)
        num_labels = num_labels or run_labels or 0
        if config.pooling and config.pooling != run_pooling:
            logger.warning("--pooling %s overrides pooling %s of %s", config.pooling, run_pooling, config.run_config)
        pooling = config.pooling or run_pooling
    else:
        model = model_config(config.config)
    if config.seq_length:
        try:
            model = dataclasses.replace(model, seq_length=config.seq_length)
        except ConfigError as err:
            raise ConfigError(f"--seq_length: {err}") from None
    task = config.task or (run_task(config.run_config)[0] if config.run_config else "classifier")
    if task == "squad":
        network = build_span_model(model, config.checkpoint)
        path = export_network(network, dummy_inputs(config.batch_size, model.seq_length), config.output,
                              config.format)
        logger.info("exported %s: inputs int32 [%d, %d] x 3, start and end logits float32 [%d, %d]", path,
                    config.batch_size, model.seq_length, config.batch_size, model.seq_length)
        return path
    if task == "ner":
        use_crf = config.use_crf
        if use_crf is None and config.run_config:
            use_crf = run_task(config.run_config)[1]
        network = build_tagger(model, config.checkpoint, use_crf, config.num_labels)
        inputs = [*dummy_inputs(config.batch_size, model.seq_length),
                  dummy_inputs(config.batch_size, model.seq_length)[1]]
        path = export_network(network, inputs, config.output, config.format)
        logger.info("exported %s: inputs int32 [%d, %d] x 4, tag ids int32 [%d, %d]", path, config.batch_size,
                    model.seq_length, config.batch_size, model.seq_length)
        return path
    network = build_classifier(model, num_labels, config.checkpoint, pooling)
    inputs = dummy_inputs(config.batch_size, model.seq_length)
    path = export_network(network, inputs, config.output, config.format)
    logger.info("exported %s: inputs int32 [%d, %d] x 3, logits float32 [%d, %d]", path, config.batch_size,
                model.seq_length, config.batch_size, network.classifier.weight.shape[0])
    return path
