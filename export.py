"""Export a fine-tuned sequence classifier, NER tagger or SQuAD model to MindIR for inference (the zoo's export.py)::

    python export.py --run_config output/classifier/config.yaml \\
        --checkpoint output/classifier/checkpoints/classifier-00001000.ckpt --output export/classifier
    python export.py --run_config output/msra/config.yaml --checkpoint output/msra/best_model.ckpt \\
        --seq_length 128 --batch_size 8 --output export/msra_tagger
    python export.py --config bert_base --num_labels 2 --checkpoint classifier.ckpt --seq_length 128 \\
        --batch_size 8 --output export/classifier.mindir

The model comes from ``--run_config`` (the ``config.yaml`` a fine-tuning run writes: its ``model``
section and ``num_labels``) or from ``--config`` (a name in configs/ or a YAML path). ``num_labels``
defaults to the run config's, else to the checkpoint's classifier. The graph takes
``input_ids, input_mask, segment_ids`` int32 [batch_size, seq_length] and returns float32 logits
[batch_size, num_labels]; load it with ``mindspore.nn.GraphCell(mindspore.load(FILE))``.
A run_ner.py run (its config has ``use_crf``) exports the tagger with its decoding in the graph
(Viterbi for the CRF): inputs ``input_ids, input_mask, segment_ids, label_mask`` int32 [B, S],
output the tag ids int32 [B, S] (the label list is the records' dataset.json).
A run_squad.py run (its config has ``n_best_size``) exports the span model: the three inputs, and
float32 start and end logits [B, S] (postprocess them with src/squad_postprocess.py).
``--format MINDIR`` works on every backend; AIR needs Ascend; ONNX uses MindSpore's deprecated
exporter, which cannot export the exact ``gelu`` activation (see src/export.py).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms

    from src.checkpoint import CheckpointError
    from src.config import ConfigError
    from src.export import ExportError, export_classifier, parse_export_args

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = parse_export_args(argv, description=__doc__)
        ms.set_context(device_target=config.device_target)
        path = export_classifier(config)
    except (ConfigError, CheckpointError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"exported {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
