"""Convert BERT / NEZHA checkpoints between HuggingFace, Google TF1 and MindSpore.

HuggingFace (safetensors or pytorch_model.bin) or Google TF1 -> MindSpore::

    python tools/convert_checkpoint.py --input HF_DIR --output out/model.ckpt
    python tools/convert_checkpoint.py --input uncased_L-12_H-768_A-12/bert_model.ckpt \\
        --hf-config uncased_L-12_H-768_A-12/bert_config.json --output out/model.ckpt

MindSpore -> HuggingFace (writes model.safetensors and config.json into a directory)::

    python tools/convert_checkpoint.py --to huggingface --input out/model.ckpt --output hf_dir

The model config comes from ``--config`` (a YAML in configs/ or a path, or a run's config.yaml),
else from the HF
``config.json`` / Google ``bert_config.json`` next to the input (or ``--hf-config``), else from the
``.yaml`` written beside a converted .ckpt. The checkpoint is checked against a
BertForPreTraining built from that config: every source key is reported as used or unused, every
model parameter as filled or left to its fresh initialisation, and a shape mismatch stops the
conversion before anything is written. The resolved config is saved beside the output.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.checkpoint import (CheckpointError, load_checkpoint_into, read_checkpoint,  # noqa: E402
                            save_hf_checkpoint, save_mindspore_checkpoint)
from src.config import (BertConfig, ConfigError, bert_config_from_hf, bert_config_to_hf, from_dict,  # noqa: E402
                        load_yaml, resolve_config_path, save_yaml)

logger = logging.getLogger("convert_checkpoint")


def find_config(args: argparse.Namespace) -> BertConfig:
    """The model config for the conversion, from the first source that exists."""
    if args.config:
        path = resolve_config_path(args.config)
        data = load_yaml(path)
        if isinstance(data.get("model"), dict):  # a run's config.yaml (run_*.py): its model section
            return from_dict(BertConfig, data["model"], source=f"{path} (model)")
        return from_dict(BertConfig, data, source=str(path))
    source = Path(args.input)
    folder = source if source.is_dir() else source.parent
    candidates = [Path(args.hf_config)] if args.hf_config else [folder / "config.json", folder / "bert_config.json"]
    for candidate in candidates:
        if candidate.exists():
            return bert_config_from_hf(candidate)
    beside = source.with_suffix(".yaml")
    if beside.exists():
        return from_dict(BertConfig, load_yaml(beside), source=str(beside))
    raise ConfigError(f"no model config found for {source}: pass --config NAME_OR_YAML or --hf-config config.json")


def convert(args: argparse.Namespace) -> int:
    from src.heads import BertForPreTraining

    config = find_config(args)
    ckpt = read_checkpoint(args.input)
    logger.info("read %d tensors from %s (%s)", len(ckpt.params), ckpt.source, ckpt.source_format)
    report = load_checkpoint_into(BertForPreTraining(config), ckpt)  # validates every name and shape
    print(report.summary())
    output = Path(args.output)
    if args.to == "mindspore":
        save_mindspore_checkpoint(ckpt.params, output)
        save_yaml(config, output.with_suffix(".yaml"))
        print(f"wrote {output} and {output.with_suffix('.yaml')}")
    else:
        target = save_hf_checkpoint(ckpt.params, output, bert_config_to_hf(config),
                                    backbone_prefix=args.hf_prefix, relative_positions=config.use_relative_positions)
        print(f"wrote {target} and {output / 'config.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="checkpoint file, HF directory or TF1 checkpoint prefix")
    parser.add_argument("--output", required=True, help="output .ckpt (to mindspore) or directory (to huggingface)")
    parser.add_argument("--to", choices=("mindspore", "huggingface"), default="mindspore", help="target format")
    parser.add_argument("--config", help="model YAML (name in configs/ or path); default: found next to the input")
    parser.add_argument("--hf-config", help="HF config.json or Google bert_config.json for the input")
    parser.add_argument("--hf-prefix", default=None,
                        help="prefix of encoder keys in the HF output ('' for a bare BertModel, 'bert.'); "
                             "default: none without heads, bert./nezha. with heads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return convert(args)
    except (CheckpointError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
