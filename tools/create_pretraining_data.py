"""Create MLM/NSP pretraining records from text, with Google's semantics, streaming and in parallel.

Input: one sentence per line, a blank line between documents (``tools/wiki_to_text.py`` writes
this from a Wikipedia dump or raw text). Output: shards ``PREFIX-FFFFF-CCCC.mindrecord`` (or
``.tfrecord`` plus ``PREFIX-schema.json``) and, written last, the manifest ``PREFIX-summary.json``
in ``--output_dir`` (run_pretrain.py reads the shards it lists, and refuses a directory without
it). A directory with earlier records is replaced only with ``--overwrite true``::

    python tools/create_pretraining_data.py --input_file corpus/ --output_dir data/pretrain \\
        --vocab_file vocab.txt --max_seq_length 128 --max_predictions_per_seq 20 --dupe_factor 5 \\
        --num_workers 2

    # Chinese with whole-word masking (jieba finds the words)
    python tools/create_pretraining_data.py --input_file zh.txt --output_dir data/zh --vocab_file vocab_zh.txt \\
        --do_whole_word_mask true --word_segmenter jieba

    # continued pretraining on domain text, one text per line, packed, no NSP
    python tools/create_pretraining_data.py --input_file domain.txt --output_dir data/domain \\
        --vocab_file vocab.txt --mode line_by_line --pack_lines true

    # several machines: each MPI rank takes input_file[rank::size]
    mpirun -n 4 python tools/create_pretraining_data.py --input_file shards/ --output_dir data/ ...

Every option can also come from a YAML file (``--config FILE``); ``--help`` lists them all.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from src.config import ConfigError, PretrainingDataConfig, parse_config  # noqa: E402


def format_summary(summary: dict) -> str:
    s = summary["stats"]
    lines = [
        f"documents {s['documents']:,}  sentences {s['sentences']:,}  instances {s['instances']:,}  "
        f"tokens {s['tokens']:,}",
        f"masked {s['masked']:,} ({s['masked_share_of_tokens']:.2%} of tokens): "
        f"[MASK] {s.get('mask_share', 0):.1%}, kept {s.get('kept_share', 0):.1%}, random {s.get('random_share', 0):.1%}",
        f"NSP random next {s['random_next_share']:.1%} ({s['random_next_share_unforced']:.1%} where A was not "
        f"the only segment)  short targets {s['short_targets']:,}",
        f"{len(summary['shards'])} shards, {summary['rows']:,} records in {summary['seconds']:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from src.data.pretraining_pipeline import InputError, create_pretraining_data
    try:
        config = parse_config(PretrainingDataConfig, argv, description=__doc__)
        summary = create_pretraining_data(config)
    except (ConfigError, InputError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: no summary was written, so the records are incomplete and run_pretrain.py refuses "
              "them; rerun with --overwrite true", file=sys.stderr)
        return 130
    if summary:  # rank 0
        print(format_summary(summary))
        print(f"summary: {Path(config.output_dir) / (config.output_prefix + '-summary.json')}")
        logging.getLogger("create_pretraining_data").debug(json.dumps(summary["stats"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
