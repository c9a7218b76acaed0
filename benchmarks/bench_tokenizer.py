"""Tokenizer speed: this project's FullTokenizer against Google's (bert-tensorflow) on real text.

Every non-empty line of the English Wikipedia sample (through wikiextractor, as the parity test
uses it) is tokenized with the uncased vocab; the best of ``--runs`` timings is reported::

    python benchmarks/bench_tokenizer.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def wiki_lines() -> list[str]:
    from src.sample_data import fetch

    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "wikiextractor.WikiExtractor", str(fetch("enwiki_dump")), "-o", out,
                        "--json", "-q", "--html-safe", ""], check=True)
        lines = []
        for path in sorted(Path(out).rglob("wiki_*")):
            for row in path.read_text(encoding="utf-8").splitlines():
                lines.extend(t for t in json.loads(row)["text"].splitlines() if t.strip())
    return lines


def best(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from absl import flags
    from bert import tokenization as google

    from src.sample_data import fetch
    from src.tokenization import FullTokenizer

    flags.FLAGS.mark_as_parsed()
    vocab = str(fetch("vocab_en"))
    lines = wiki_lines()
    theirs = google.FullTokenizer(vocab, do_lower_case=True)
    ours = FullTokenizer(vocab, do_lower_case=True)
    google_s, reference = best(lambda: [theirs.tokenize(t) for t in lines], args.runs)
    batch_s, batch = best(lambda: ours.tokenize_batch(lines), args.runs)
    line_s, _ = best(lambda: [ours.tokenize(t) for t in lines], args.runs)
    assert batch == reference, "tokens differ from Google's"
    tokens = sum(map(len, reference))
    print(f"{len(lines):,} lines, {tokens:,} tokens (English Wikipedia sample, uncased vocab), "
          f"{os.cpu_count()} cores, best of {args.runs}\n")
    print("| tokenizer | seconds | tokens/s | vs Google |\n| --- | --- | --- | --- |")
    for label, seconds in (("Google FullTokenizer.tokenize, line by line", google_s),
                           ("FullTokenizer.tokenize_batch (Rust threads)", batch_s),
                           ("FullTokenizer.tokenize, line by line", line_s)):
        print(f"| {label} | {seconds:.2f} | {tokens / seconds / 1e3:,.0f} k | {google_s / seconds:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
