"""Show pretraining (or fine-tuning) records decoded back to tokens, or statistics over them.

    python tools/view_records.py data/train --vocab vocab.txt                 # first 5 records
    python tools/view_records.py data/part-0.mindrecord --vocab vocab.txt --num 3 --offset 100
    python tools/view_records.py 'data/*.tfrecord' --vocab vocab.txt --stats  # table over all records
    python tools/view_records.py data/train --vocab vocab.txt --stats --json  # the same as JSON

Each record prints one line per segment (A, B) with masked positions visible: ``[MASK]{cat}``
(replaced by [MASK]), ``dog→{cat}`` (replaced by a random token), ``{cat}`` (kept unchanged);
the braces hold the token to predict. The header line gives the NSP label (IsNext / RandomNext).
Works for MindRecord and TFRecord files; needs no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys

# An entry point run from anywhere: make the repository's `src` package importable.
_REPO_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from src.data.dataset import find_record_files  # noqa: E402
from src.data.record_stats import (  # noqa: E402
    compute_record_stats,
    format_record,
    format_stats_table,
    load_vocab_arg,
)
from src.data.records import count_records, read_records  # noqa: E402

LEGEND = "legend: [MASK]{x} masked, y→{x} random replacement, {x} kept; x = token to predict"


def show_records(files, vocab, num: int = 5, offset: int = 0, out=sys.stdout) -> int:
    """Prints records ``offset .. offset + num - 1`` (counted over the files in order); returns how many."""
    inv_vocab = {i: t for t, i in load_vocab_arg(vocab).items()}
    print(LEGEND, file=out)
    index = shown = 0
    for path in files:
        if shown >= num:
            break
        rows = count_records(path)
        if index + rows <= offset:
            index += rows
            continue
        skip = max(0, offset - index)
        for row_number, row in enumerate(read_records(path, max_rows=skip + num - shown)):
            if row_number < skip:
                continue
            title = f"#{index + row_number} {path} row {row_number}"
            print(format_record(row, inv_vocab, title=title), file=out)
            shown += 1
        index += rows
    if shown == 0:
        print(f"no records at offset {offset} (the files have {index})", file=out)
    return shown


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, print records or statistics; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="+", help="record files, directories or globs (.mindrecord or .tfrecord)")
    parser.add_argument("--vocab", required=True, help="vocab file, one token per line")
    parser.add_argument("--num", type=int, default=5, help="records to show (default 5)")
    parser.add_argument("--offset", type=int, default=0, help="index of the first record to show (default 0)")
    parser.add_argument("--stats", action="store_true", help="print statistics over all records instead")
    parser.add_argument("--json", action="store_true", help="with --stats: print the statistics as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.num < 0 or args.offset < 0:
        parser.error("--num and --offset must be >= 0")
    try:
        files = find_record_files(args.files)
        vocab = load_vocab_arg(args.vocab)
        if args.stats:
            stats = compute_record_stats(files, vocab)
            print(json.dumps(stats, indent=2) if args.json else format_stats_table(stats))
        else:
            show_records(files, vocab, args.num, args.offset)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
