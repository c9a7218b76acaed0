"""Fine-tune BERT or NEZHA for extractive question answering (SQuAD v1.1 / v2.0, CMRC 2018).

First turn SQuAD-layout JSON into windowed records with tools/create_squad_data.py, then::

    python tools/create_squad_data.py --train_file train-v1.1.json --predict_file dev-v1.1.json \\
        --vocab_file vocab.txt --output_dir data/squad
    python run_squad.py --config configs/squad_v1.yaml --data_dir data/squad --init_checkpoint bert.ckpt \\
        --output_dir output/squad
    python run_squad.py --config configs/squad_v1.yaml --data_dir data/squad --do_train false \\
        --init_checkpoint output/squad/best_model.ckpt     # score a trained model again

SQuAD 2.0 records (``--version_2_with_negative true`` when they are made) are postprocessed and
scored as 2.0 (null answers, HasAns / NoAns, the best threshold from the null odds); the config's
``version_2_with_negative``, ``doc_stride`` and ``max_query_length`` are checked against the
records. The config comes from dataclass defaults (src/config.py: SquadConfig), then ``--config
YAML``, then ``--key value`` options. Training evaluates every ``eval_every`` steps (default: each
epoch) on every window of the eval split, keeps the best weights in ``OUTPUT_DIR/best_model.ckpt``
and resumes from ``OUTPUT_DIR/checkpoints`` after an interruption; then the best weights are scored
(``all_results.json``: EM / F1) and ``predictions_SPLIT.json``, ``nbest_predictions_SPLIT.json``
(and ``null_odds_SPLIT.json``) are written.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from src.config import SquadConfig
    from src.finetune import run_main
    from src.squad import SquadTask

    return run_main(SquadConfig, lambda config: SquadTask(config.data_dir, config), argv, __doc__,
                    data_tool="tools/create_squad_data.py")


if __name__ == "__main__":
    sys.exit(main())
