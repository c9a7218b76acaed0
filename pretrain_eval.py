"""Evaluate a pretraining checkpoint on held-out records: MLM accuracy (with the unigram baseline),
MLM perplexity and NSP accuracy (the zoo's pretrain_eval.py)::

    python pretrain_eval.py --model bert_base --checkpoint output/pretrain/checkpoints/pretrain-00010000.ckpt \\
        --data_dir data/eval

or with the model of a run: ``--run_config output/pretrain/config.yaml``.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms

    from src.checkpoint import CheckpointError, load_checkpoint_into
    from src.config import BertConfig, ConfigError, PretrainEvalConfig, from_dict, load_yaml, parse_config
    from src.data.dataset import DataMismatchError, create_pretraining_dataset, pretraining_record_files
    from src.data.records import record_columns
    from src.heads import BertForPreTraining
    from src.pretrain_eval import evaluate_pretraining, format_metrics

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = parse_config(PretrainEvalConfig, argv, description=__doc__)
        if not config.checkpoint or not config.data_dir:
            raise ConfigError("pass --checkpoint FILE and --data_dir DIR")
        if config.run_config:
            config.model = from_dict(BertConfig, load_yaml(config.run_config).get("model", {}),
                                     source=config.run_config, prefix="model.")
        ms.set_context(mode=ms.GRAPH_MODE if config.mode == "graph" else ms.PYNATIVE_MODE,
                       device_target=config.device_target)
        files = pretraining_record_files(config.data_dir)
        predictions = {c.name: c.length for c in record_columns(files[0])}["masked_lm_ids"]
        dataset = create_pretraining_dataset(files, config.batch_size, config.model.seq_length, predictions,
                                             config.model.vocab_size, shuffle=False, drop_remainder=False)
        network = BertForPreTraining(config.model)
        report = load_checkpoint_into(network, config.checkpoint)
        if report.initialized:
            logging.getLogger("pretrain_eval").warning("%s lacks %d parameters (left random): %s", config.checkpoint,
                                                       len(report.initialized), ", ".join(report.initialized[:8]))
        metrics = evaluate_pretraining(network, dataset, config.max_batches, config.use_nsp)
    except (ConfigError, CheckpointError, DataMismatchError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_metrics(metrics, Path(config.checkpoint).name))
    if config.output:
        Path(config.output).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
