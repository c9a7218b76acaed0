"""Fine-tune BERT or NEZHA for named-entity recognition, with a CRF or a softmax tagging head.

First turn the NER files into records with tools/create_ner_data.py, then::

    python tools/create_ner_data.py --task msra --vocab_file vocab_zh.txt --output_dir data/msra
    python run_ner.py --config configs/ner_msra.yaml --data_dir data/msra --init_checkpoint bert_zh.ckpt \\
        --output_dir output/msra
    python run_ner.py --config configs/ner_msra.yaml --data_dir data/msra --use_crf false   # softmax head

The labels (O = 0), the tag scheme and the metrics come from ``DATA_DIR/dataset.json``. The config
comes from dataclass defaults (src/config.py: NerConfig), then ``--config YAML``, then ``--key
value`` options. Training evaluates every ``eval_every`` steps (default: each epoch) on every
sentence of the eval splits: entity-level precision, recall and F1 (seqeval's default mode, or
``--metric_mode strict``), per type, and token accuracy. It keeps the best weights in
``OUTPUT_DIR/best_model.ckpt``, resumes from ``OUTPUT_DIR/checkpoints`` after an interruption, then
scores the best weights (``all_results.json``) and writes ``predictions_SPLIT.txt`` (token, gold,
predicted) and, for CLUENER input, ``cluener_predict_SPLIT.json``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from src.config import NerConfig
    from src.finetune import run_main
    from src.ner import NerTask

    return run_main(NerConfig, lambda config: NerTask(config.data_dir, config.metric_mode), argv, __doc__,
                    data_tool="tools/create_ner_data.py")


if __name__ == "__main__":
    sys.exit(main())
