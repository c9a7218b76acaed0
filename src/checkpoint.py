"""Read HuggingFace, Google TF1 and MindSpore checkpoints, convert names, load into a network.

Canonical names are the MindSpore parameter names of :class:`~src.heads.BertForPreTraining`:
``bert.embeddings.word_embeddings.embedding_table``, ``bert.encoder.layer.0.attention.self.query.weight``,
``cls.predictions.transform.LayerNorm.gamma`` ... A bare :class:`~src.bert_model.BertModel` has the
same names without ``bert.``. Conversion between worlds is a table of renames:

================================  ==================================  ===============================
HuggingFace (PyTorch)             Google TF1                          MindSpore
================================  ==================================  ===============================
``[bert.|nezha.]x.weight`` Linear ``bert/x/kernel`` (transposed)      ``bert.x.weight``
``*.LayerNorm.weight|gamma``      ``*/LayerNorm/gamma``               ``*.LayerNorm.gamma``
``*.LayerNorm.bias|beta``         ``*/LayerNorm/beta``                ``*.LayerNorm.beta``
``*_embeddings.weight``           ``*_embeddings``                    ``*_embeddings.embedding_table``
``cls.predictions.bias``          ``cls/predictions/output_bias``     ``cls.predictions.bias``
``cls.seq_relationship.weight``   ``cls/seq_relationship/output_weights``  ``cls.seq_relationship.weight``
================================  ==================================  ===============================

Every source key is either converted or listed with the reason it was skipped (buffer, tied
weight, optimizer state), and loading lists every network parameter the checkpoint did not fill.
Checkpoints written by the MindSpore model zoo's BERT/NEZHA scripts are recognised by their names
and converted by :mod:`src.zoo_checkpoint`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

logger = logging.getLogger(__name__)

BACKBONE = "bert."
_BACKBONE_ROOTS = ("embeddings.", "encoder.", "pooler.")
_OPTIMIZER_SUFFIXES = ("/adam_m", "/adam_v", "/lamb_m", "/lamb_v", "/Momentum")
_TRAINING_STATE = ("global_step", "bad_steps", "good_steps", "loss_scale", "current_loss_scale", "learning_rate")
# prefixes of optimizer and train-step state in MindSpore training checkpoints (this zoo's and the zoo's)
TRAINING_PREFIXES = ("moment1.", "moment2.", "adam_m.", "adam_v.", "lamb_m.", "lamb_v.", "accu_grads.", "moments.",
                     "loss_scale.", "train_step.", "meta.", "dropout_rng.")


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not fit the network."""


@dataclass
class ConvertedCheckpoint:
    """Parameters under canonical MindSpore names, with the account of every source key.

    Attributes:
        params: canonical name -> array.
        source: the file it came from.
        source_format: ``"huggingface"``, ``"tensorflow"``, ``"mindspore"`` (this project's names) or
            ``"mindspore-zoo"`` (the MindSpore model zoo's, :mod:`src.zoo_checkpoint`).
        origin: canonical name -> the source key it came from.
        skipped: source key -> why it was not converted.
    """

    params: dict[str, np.ndarray]
    source: str
    source_format: str
    origin: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadReport:
    """What loading a checkpoint into a network did.

    Attributes:
        loaded: network parameter names filled from the checkpoint.
        initialized: network parameters the checkpoint did not have (they keep their fresh initialisation).
        unused: source key -> why it was not loaded (not in this network, buffer, tied, optimizer state).
    """

    loaded: list[str]
    initialized: list[str]
    unused: dict[str, str]

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} parameters"]
        if self.initialized:
            lines.append(f"freshly initialised ({len(self.initialized)}): {', '.join(self.initialized)}")
        if self.unused:
            lines.append(f"unused checkpoint keys ({len(self.unused)}):")
            lines.extend(f"  {k}: {why}" for k, why in sorted(self.unused.items()))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Name tables
# --------------------------------------------------------------------------------------
def _leaf_to_mindspore(name: str) -> str:
    """Rename HF leaves to MindSpore ones (LayerNorm gamma/beta, Embedding embedding_table)."""
    name = re.sub(r"\.LayerNorm\.(weight|gamma)$", ".LayerNorm.gamma", name)
    name = re.sub(r"\.LayerNorm\.(bias|beta)$", ".LayerNorm.beta", name)
    return re.sub(r"_embeddings\.weight$", "_embeddings.embedding_table", name)


def hf_to_mindspore_name(name: str) -> tuple[Optional[str], str]:
    """HuggingFace key -> (canonical MindSpore name, "") or (None, reason it is skipped)."""
    if name.endswith((".position_ids", ".token_type_ids", ".positions_encoding")):
        return None, "buffer, not a weight"
    if name == "cls.predictions.decoder.weight":
        return None, "tied to bert.embeddings.word_embeddings"
    if name == "cls.predictions.decoder.bias":
        return None, "tied to cls.predictions.bias"
    if name.startswith(("bert.", "nezha.")):
        name = BACKBONE + name.split(".", 1)[1]
    elif name.startswith(_BACKBONE_ROOTS):
        name = BACKBONE + name
    return _leaf_to_mindspore(name), ""


def mindspore_to_hf_name(name: str, backbone_prefix: str = "bert.") -> str:
    """Canonical MindSpore name -> HuggingFace key (``backbone_prefix`` replaces ``bert.``; may be "")."""
    if name.startswith(BACKBONE):
        name = backbone_prefix + name[len(BACKBONE):]
    name = re.sub(r"\.LayerNorm\.gamma$", ".LayerNorm.weight", name)
    name = re.sub(r"\.LayerNorm\.beta$", ".LayerNorm.bias", name)
    return re.sub(r"_embeddings\.embedding_table$", "_embeddings.weight", name)


def tf_to_hf_name(name: str) -> tuple[Optional[str], bool, str]:
    """Google TF1 variable -> (HF key, needs transpose, "") or (None, False, reason)."""
    if name in _TRAINING_STATE or name.endswith(_OPTIMIZER_SUFFIXES):
        return None, False, "optimizer or training state"
    special = {
        "cls/predictions/output_bias": "cls.predictions.bias",
        "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
        "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
    }
    if name in special:
        return special[name], False, ""
    if not name.startswith(("bert/", "cls/")):
        return None, False, "not a BERT variable"
    parts = [re.sub(r"^layer_(\d+)$", r"layer.\1", p) for p in name.split("/")]
    transpose = parts[-1] == "kernel"
    if transpose:
        parts[-1] = "weight"
    elif parts[-1].endswith("_embeddings"):
        parts.append("weight")
    return ".".join(parts), transpose, ""


# --------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------
def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); "
                              "it may be truncated or corrupt") from None


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"reading {path} needs PyTorch (pip install torch==2.13.0), "
                              "or convert it to safetensors first") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k: v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()
            for k, v in state.items() if hasattr(v, "detach")}


_CRC_TAG = b"crc_num"  # MindSpore's trailer: the tag and a 10-byte big-endian CRC32 of the content


def has_crc(path: str | os.PathLike) -> bool:
    """Whether a .ckpt file ends with MindSpore's CRC32 trailer (``save_checkpoint(..., crc_check=True)``)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 17:
            return False
        f.seek(-17, os.SEEK_END)
        return f.read(7) == _CRC_TAG


def _read_mindspore(path: Path) -> dict[str, np.ndarray]:
    import mindspore as ms
    try:
        params = ms.load_checkpoint(str(path), crc_check=has_crc(path))
    except Exception as err:  # MindSpore raises ValueError or RuntimeError for a bad file
        raise CheckpointError(f"{path} is not a readable MindSpore checkpoint ({str(err).splitlines()[0]}); "
                              "it may be truncated or corrupt") from None
    return {k: v.asnumpy() for k, v in params.items()}


def _tf_prefix(path: Path) -> Optional[Path]:
    """The checkpoint prefix of a TF1 checkpoint given as prefix, .index/.meta/.data file or folder."""
    if path.is_dir():
        indexes = sorted(path.glob("*.index"))
        return indexes[0].with_suffix("") if len(indexes) == 1 else None
    text = str(path)
    for suffix in (".index", ".meta"):
        if text.endswith(suffix):
            return Path(text[: -len(suffix)])
    if re.search(r"\.data-\d+-of-\d+$", text):
        return Path(re.sub(r"\.data-\d+-of-\d+$", "", text))
    return path if Path(text + ".index").exists() else None


def _read_tensorflow(prefix: Path) -> dict[str, np.ndarray]:
    try:
        import tensorflow as tf
    except ImportError:
        raise CheckpointError(f"reading the TensorFlow checkpoint {prefix} needs TensorFlow "
                              "(pip install 'mindspore-bert-zoo[tf]' or tensorflow-cpu)") from None
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    except Exception as err:  # tf.errors.* for a bad file
        raise CheckpointError(f"{prefix} is not a readable TensorFlow checkpoint ({err})") from None


def detect_format(path: str | os.PathLike) -> tuple[str, Path]:
    """Find what ``path`` is: returns (format, file) with format in huggingface-safetensors,
    huggingface-torch, mindspore, tensorflow."""
    path = Path(path)
    if path.is_dir():
        for name, fmt in (("model.safetensors", "huggingface-safetensors"),
                          ("pytorch_model.bin", "huggingface-torch")):
            if (path / name).exists():
                return fmt, path / name
        ckpts = sorted(path.glob("*.ckpt"))
        if len(ckpts) == 1:
            return "mindspore", ckpts[0]
        prefix = _tf_prefix(path)
        if prefix is not None:
            return "tensorflow", prefix
        raise CheckpointError(f"{path} holds no model.safetensors, pytorch_model.bin, single .ckpt "
                              "or single TF checkpoint (.index)")
    if path.suffix == ".safetensors":
        fmt = "huggingface-safetensors"
    elif path.suffix in (".bin", ".pt", ".pth"):
        fmt = "huggingface-torch"
    elif path.suffix == ".ckpt" and path.exists():
        fmt = "mindspore"
    else:
        prefix = _tf_prefix(path)
        if prefix is None:
            raise CheckpointError(f"checkpoint {path} does not exist or is of an unknown kind "
                                  "(expected .safetensors, .bin, MindSpore .ckpt or a TF checkpoint prefix)")
        return "tensorflow", prefix
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return fmt, path


def read_checkpoint(path: str | os.PathLike) -> ConvertedCheckpoint:
    """Read any supported checkpoint and convert its names to canonical MindSpore names."""
    fmt, file = detect_format(path)
    if fmt == "huggingface-safetensors":
        return convert_hf(_read_safetensors(file), str(file))
    if fmt == "huggingface-torch":
        return convert_hf(_read_torch(file), str(file))
    if fmt == "tensorflow":
        return convert_tf(_read_tensorflow(file), str(file))
    raw = _read_mindspore(file)
    from .zoo_checkpoint import convert_zoo, is_zoo_checkpoint

    if is_zoo_checkpoint(raw):
        return convert_zoo(raw, str(file))
    skipped = {k: "optimizer or training state" for k in raw
               if k in _TRAINING_STATE or k.startswith(TRAINING_PREFIXES)}
    params = {k: v for k, v in raw.items() if k not in skipped}
    return ConvertedCheckpoint(params, str(file), "mindspore", {k: k for k in params}, skipped)


def convert_hf(state: Mapping[str, np.ndarray], source: str) -> ConvertedCheckpoint:
    """HuggingFace state dict -> canonical MindSpore names (no transposes: Linear is [out, in] in both)."""
    out = ConvertedCheckpoint({}, source, "huggingface")
    for key, value in state.items():
        name, reason = hf_to_mindspore_name(key)
        if name is None:
            out.skipped[key] = reason
            continue
        add_converted(out, name, key, np.asarray(value))
    _check_tied(out, state)
    return out


def convert_tf(state: Mapping[str, np.ndarray], source: str) -> ConvertedCheckpoint:
    """Google TF1 variables -> canonical MindSpore names (kernels transposed to [out, in])."""
    out = ConvertedCheckpoint({}, source, "tensorflow")
    for key, value in state.items():
        hf_name, transpose, reason = tf_to_hf_name(key)
        if hf_name is None:
            out.skipped[key] = reason
            continue
        name, _ = hf_to_mindspore_name(hf_name)
        value = np.asarray(value)
        add_converted(out, name, key, np.ascontiguousarray(value.T) if transpose else value)
    return out


def add_converted(out: ConvertedCheckpoint, name: str, key: str, value: np.ndarray) -> None:
    if name in out.params:
        raise CheckpointError(f"{out.source}: keys {out.origin[name]!r} and {key!r} both map to {name!r}")
    out.params[name] = value
    out.origin[name] = key


def _check_tied(out: ConvertedCheckpoint, state: Mapping[str, np.ndarray]) -> None:
    decoder = state.get("cls.predictions.decoder.weight")
    words = out.params.get("bert.embeddings.word_embeddings.embedding_table")
    if decoder is not None and words is not None and not np.array_equal(np.asarray(decoder), words):
        raise CheckpointError(f"{out.source}: cls.predictions.decoder.weight differs from the word embeddings; "
                              "this zoo ties the MLM decoder to the embeddings and cannot load an untied one")


# --------------------------------------------------------------------------------------
# Loading into a network, writing
# --------------------------------------------------------------------------------------
def _shape_hint(ckpt: ConvertedCheckpoint, target: Mapping[str, tuple]) -> str:
    words = ckpt.params.get("bert.embeddings.word_embeddings.embedding_table")
    mine = [s for n, s in target.items() if n.endswith("embeddings.word_embeddings.embedding_table")]
    if words is None or not mine:
        return ""
    (v, h), (mv, mh) = words.shape, mine[0]
    notes = []
    if h != mh:
        notes.append(f"the checkpoint has hidden_size {h}, the config {mh}")
    if v != mv:
        notes.append(f"the checkpoint has vocab_size {v}, the config {mv}")
    return f" ({'; '.join(notes)})" if notes else ""


def assign_in_place(param, value) -> None:
    """Write ``value`` (array-like of the parameter's shape) into ``param``'s own storage.

    ``Parameter.set_data`` replaces the storage, and a function compiled with ``ms.jit`` before
    that keeps reading the old one (no error, no warning): every load
    into a network that may already have run goes through here, so that compiled predictors and
    train steps see the loaded weights.
    """
    import mindspore as ms
    from mindspore import ops

    ops.assign(param, ms.Tensor(np.asarray(value) if not isinstance(value, ms.Tensor) else value.asnumpy(),
                                dtype=param.dtype))


def load_checkpoint_into(network, checkpoint: str | os.PathLike | ConvertedCheckpoint) -> LoadReport:
    """Load a checkpoint of any supported kind into ``network``, in place.

    Works for a bare ``BertModel`` (names without ``bert.``) and for networks holding the
    encoder as ``self.bert`` (pretraining and fine-tuning networks). All shapes are checked
    before anything is written.

    Raises:
        CheckpointError: a shape differs (the message names both keys and both shapes), or the
            file cannot be read.
    """
    import mindspore as ms
    ckpt = checkpoint if isinstance(checkpoint, ConvertedCheckpoint) else read_checkpoint(checkpoint)
    net_params = {p.name: p for p in network.get_parameters()}
    prefixed = any(n.startswith(BACKBONE) for n in net_params)
    unused = dict(ckpt.skipped)
    plan: list[tuple[str, np.ndarray]] = []
    # the word embeddings first: their shape tells both the hidden size and the vocab size
    for name, value in sorted(ckpt.params.items(), key=lambda kv: "word_embeddings" not in kv[0]):
        target = name if prefixed or not name.startswith(BACKBONE) else name[len(BACKBONE):]
        source_key = ckpt.origin.get(name, name)
        if target not in net_params:
            unused[source_key] = "no such parameter in this network"
            continue
        param = net_params[target]
        if tuple(value.shape) != tuple(param.shape):
            hint = _shape_hint(ckpt, {n: tuple(p.shape) for n, p in net_params.items()})
            raise CheckpointError(f"{ckpt.source}: {source_key!r} has shape {tuple(value.shape)} but the model's "
                                  f"{target!r} has shape {tuple(param.shape)}{hint}")
        plan.append((target, value))
    for target, value in plan:
        assign_in_place(net_params[target], value)
    loaded = [t for t, _ in plan]
    initialized = sorted(set(net_params) - set(loaded))
    report = LoadReport(loaded, initialized, unused)
    logger.info("%s: loaded %d parameters, %d freshly initialised, %d checkpoint keys unused",
                ckpt.source, len(loaded), len(initialized), len(unused))
    return report


def _atomic_target(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".tmp")
    os.close(fd)
    return tmp


def save_mindspore_checkpoint(params: Mapping[str, np.ndarray], path: str | os.PathLike,
                              crc_check: bool = True) -> Path:
    """Write ``params`` as a MindSpore .ckpt, atomically (temporary file, then rename), with
    MindSpore's CRC32 trailer unless ``crc_check`` is False (for readers older than MindSpore 2.x)."""
    import mindspore as ms
    path = Path(path)
    if path.suffix != ".ckpt":
        raise CheckpointError(f"MindSpore checkpoint name must end in .ckpt, got {path}")
    tmp = _atomic_target(path)
    try:
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(np.ascontiguousarray(v))} for k, v in params.items()],
                           tmp, format="ckpt", crc_check=crc_check)
        written = tmp if os.path.exists(tmp) and os.path.getsize(tmp) else tmp + ".ckpt"
        os.replace(written, path)
    finally:
        for leftover in (tmp, tmp + ".ckpt"):
            Path(leftover).unlink(missing_ok=True)
    return path


def network_state(network) -> dict[str, np.ndarray]:
    """The parameters of a MindSpore network under canonical names (``bert.`` added for a bare model)."""
    params = {p.name: p.asnumpy() for p in network.get_parameters()}
    if any(n.startswith(BACKBONE) for n in params):
        return params
    return {(BACKBONE + n if n.startswith(_BACKBONE_ROOTS) else n): v for n, v in params.items()}


def to_hf_state(params: Mapping[str, np.ndarray], backbone_prefix: Optional[str] = None,
                relative_positions: bool = False) -> dict[str, np.ndarray]:
    """Canonical MindSpore parameters -> a HuggingFace state dict.

    Args:
        params: canonical names.
        backbone_prefix: prefix of the encoder keys. Default: none for a bare encoder (as
            ``BertModel.save_pretrained`` writes), ``bert.`` (``nezha.`` with relative positions)
            when the checkpoint has heads. The tied decoder is not written (as HF does).
        relative_positions: the model is NEZHA.
    """
    has_heads = any(not n.startswith(BACKBONE) for n in params)
    if backbone_prefix is None:
        backbone_prefix = ("nezha." if relative_positions else "bert.") if has_heads else ""
    return {mindspore_to_hf_name(n, backbone_prefix): np.ascontiguousarray(v) for n, v in params.items()}


def save_hf_checkpoint(params: Mapping[str, np.ndarray], out_dir: str | os.PathLike,
                       hf_config: Optional[dict] = None, backbone_prefix: Optional[str] = None,
                       relative_positions: bool = False) -> Path:
    """Write ``model.safetensors`` (and ``config.json``) into ``out_dir``, each file atomically."""
    from safetensors.numpy import save_file
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.safetensors"
    tmp = _atomic_target(target)
    try:
        save_file(to_hf_state(params, backbone_prefix, relative_positions), tmp, metadata={"format": "pt"})
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if hf_config is not None:
        cfg_path = out_dir / "config.json"
        tmp = _atomic_target(cfg_path)
        try:
            Path(tmp).write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, cfg_path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return target

