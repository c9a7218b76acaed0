"""Fine-tune BERT or NEZHA for sentence(-pair) classification or regression (GLUE, CLUE, your CSV).

First turn a task into records with tools/create_classifier_data.py, then::

    python tools/create_classifier_data.py --task sst2 --data_dir glue/SST-2 --vocab_file vocab.txt \\
        --output_dir data/sst2
    python run_classifier.py --config configs/classifier_glue.yaml --data_dir data/sst2 \\
        --init_checkpoint bert_base.ckpt --output_dir output/sst2

The label list, the task's metrics (accuracy, F1, MCC, Pearson/Spearman) and regression or
classification come from ``DATA_DIR/dataset.json``. The config comes from dataclass defaults
(src/config.py: ClassifierConfig), then ``--config YAML``, then ``--key value`` options. Training
evaluates every ``eval_every`` steps (default: each epoch) on every example of the eval splits,
keeps the best weights in ``OUTPUT_DIR/best_model.ckpt`` and resumes from the newest checkpoint
in ``OUTPUT_DIR/checkpoints`` after an interruption. Finally the best weights are scored again
(``all_results.json``) and predictions are written as ``predictions_SPLIT.tsv``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from src.classifier import ClassificationTask
    from src.config import ClassifierConfig
    from src.finetune import run_main

    return run_main(ClassifierConfig, lambda config: ClassificationTask(config.data_dir), argv, __doc__,
                    data_tool="tools/create_classifier_data.py")


if __name__ == "__main__":
    sys.exit(main())
