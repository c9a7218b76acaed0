"""Convert BERT / NEZHA checkpoints between HuggingFace, Google TF1, MindSpore and the MindSpore model zoo.

HuggingFace (safetensors or pytorch_model.bin) or Google TF1 -> MindSpore::

    python tools/convert_checkpoint.py --input HF_DIR --output out/model.ckpt
    python tools/convert_checkpoint.py --input uncased_L-12_H-768_A-12/bert_model.ckpt \\
        --hf-config uncased_L-12_H-768_A-12/bert_config.json --output out/model.ckpt

MindSpore -> HuggingFace (writes model.safetensors and config.json into a directory)::

    python tools/convert_checkpoint.py --to huggingface --input out/model.ckpt --output hf_dir

The MindSpore model zoo (``official/nlp/Bert``: checkpoints of its run_pretrain.py, run_classifier.py,
run_ner.py and run_squad.py, BERT or NEZHA, either naming generation, with or without the bucket
wrapper's ``network.`` prefix) is recognised by its parameter names; its optimizer moments and
counters are reported as skipped, and the config written beside the output reproduces the zoo's
numerics (tanh GELU, LayerNorm epsilon 1e-7, NEZHA's learned K = 16 table). ``--to zoo`` writes
the zoo's names back so that a model trained here runs in the zoo::

    python tools/convert_checkpoint.py --input zoo/bert_pretrain.ckpt --output out/model.ckpt
    python tools/convert_checkpoint.py --to zoo --input output/run/best_model.ckpt --output zoo/model.ckpt

The model config comes from ``--config`` (a YAML in configs/ or a path, or a run's config.yaml),
else from the HF
``config.json`` / Google ``bert_config.json`` next to the input (or ``--hf-config``), else from the
``.yaml`` written beside a converted .ckpt (or a run's ``config.yaml`` beside its checkpoint), else,
for a zoo checkpoint, from its tensor shapes (a BERT checkpoint does not record its head count:
hidden_size / 64, as every zoo config, or ``--num-attention-heads``). The checkpoint is checked
against the network its heads belong to (pretraining, classifier, CRF tagger, span model) built
from that config: every source key is reported as used or unused, every model parameter as filled
or left to its fresh initialisation, and a shape mismatch stops the conversion before anything is
written. The resolved config is saved beside the output.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.checkpoint import (CheckpointError, ConvertedCheckpoint, load_checkpoint_into,  # noqa: E402
                            read_checkpoint, save_hf_checkpoint, save_mindspore_checkpoint)
from src.config import (BertConfig, ConfigError, bert_config_from_hf, bert_config_to_hf, from_dict,  # noqa: E402
                        load_yaml, resolve_config_path, save_yaml)

logger = logging.getLogger("convert_checkpoint")


def _model_config(path: Path) -> BertConfig:
    data = load_yaml(path)
    if isinstance(data.get("model"), dict):  # a run's config.yaml (run_*.py): its model section
        return from_dict(BertConfig, data["model"], source=f"{path} (model)")
    return from_dict(BertConfig, data, source=str(path))


def find_config(args: argparse.Namespace, ckpt: ConvertedCheckpoint) -> BertConfig:
    """The model config for the conversion, from the first source that exists."""
    if args.config:
        return _model_config(resolve_config_path(args.config))
    source = Path(args.input)
    folder = source if source.is_dir() else source.parent
    candidates = [Path(args.hf_config)] if args.hf_config else [folder / "config.json", folder / "bert_config.json"]
    for candidate in candidates:
        if candidate.exists():
            return bert_config_from_hf(candidate)
    for beside in (source.with_suffix(".yaml"), folder / "config.yaml"):
        if beside.exists() and not source.is_dir():
            return _model_config(beside)
    if ckpt.source_format == "mindspore-zoo":
        from src.zoo_checkpoint import zoo_bert_config

        return zoo_bert_config(ckpt, args.num_attention_heads)
    raise ConfigError(f"no model config found for {source}: pass --config NAME_OR_YAML or --hf-config config.json")


def validation_network(config: BertConfig, ckpt: ConvertedCheckpoint):
    """The network whose parameters the checkpoint holds, judged by its heads."""
    from src.heads import (BertForPreTraining, BertForQuestionAnswering, BertForSequenceClassification,
                           BertForTokenClassification)

    params = ckpt.params
    if "qa_outputs.weight" in params:
        return BertForQuestionAnswering(config)
    if "crf.transitions" in params:
        return BertForTokenClassification(config, params["crf.transitions"].shape[0], use_crf=True)
    if "classifier.weight" in params:  # a sentence classifier or a tagger: the same parameter names
        return BertForSequenceClassification(config, params["classifier.weight"].shape[0])
    return BertForPreTraining(config)


def convert(args: argparse.Namespace) -> int:
    ckpt = read_checkpoint(args.input)
    logger.info("read %d tensors from %s (%s)", len(ckpt.params), ckpt.source, ckpt.source_format)
    config = find_config(args, ckpt)
    report = load_checkpoint_into(validation_network(config, ckpt), ckpt)  # validates every name and shape
    print(report.summary())
    output = Path(args.output)
    if args.to in ("mindspore", "zoo"):
        if args.to == "zoo":
            from src.zoo_checkpoint import to_zoo_state, zoo_numerics_warnings

            for note in zoo_numerics_warnings(config):
                logger.warning("the zoo will not compute this model exactly: %s", note)
            save_mindspore_checkpoint(to_zoo_state(ckpt.params, config), output, crc_check=False)
        else:
            save_mindspore_checkpoint(ckpt.params, output)
        save_yaml(config, output.with_suffix(".yaml"))
        print(f"wrote {output} and {output.with_suffix('.yaml')}")
    else:
        if config.use_relative_positions and config.relative_position_type == "learned":
            raise CheckpointError("HuggingFace's NezhaModel has a fixed sinusoid relative table; this model's "
                                  "table is learned (relative_position_type: learned) and cannot be written")
        target = save_hf_checkpoint(ckpt.params, output, bert_config_to_hf(config),
                                    backbone_prefix=args.hf_prefix, relative_positions=config.use_relative_positions)
        print(f"wrote {target} and {output / 'config.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="checkpoint file, HF directory or TF1 checkpoint prefix")
    parser.add_argument("--output", required=True, help="output .ckpt (to mindspore) or directory (to huggingface)")
    parser.add_argument("--to", choices=("mindspore", "huggingface", "zoo"), default="mindspore",
                        help="target: this project's MindSpore names, HuggingFace, or the MindSpore model zoo's names")
    parser.add_argument("--config", help="model YAML (name in configs/ or path); default: found next to the input")
    parser.add_argument("--hf-config", help="HF config.json or Google bert_config.json for the input")
    parser.add_argument("--hf-prefix", default=None,
                        help="prefix of encoder keys in the HF output ('' for a bare BertModel, 'bert.'); "
                             "default: none without heads, bert./nezha. with heads")
    parser.add_argument("--num-attention-heads", type=int, default=None,
                        help="zoo BERT checkpoints without a config: the head count (default hidden_size / 64)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return convert(args)
    except (CheckpointError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
