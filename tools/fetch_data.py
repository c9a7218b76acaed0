"""Fetch the real sample checkpoints and corpora into the local cache.

    python tools/fetch_data.py all                      # everything: ~165 MB downloaded, ~120 MB kept
    python tools/fetch_data.py minilm vocab_zh          # some artifacts
    python tools/fetch_data.py --list                   # what exists and what is cached
    python tools/fetch_data.py all --cache-dir /data/bert_zoo

Prints ``name<TAB>path`` for each artifact. The cache is ``--cache-dir``, else
``$BERT_ZOO_CACHE``, else ``~/.cache/bert_zoo``; see ``src/sample_data.py``.
The Debian artifacts (fortunes_zh, fortunes_en) need apt's package lists:
run ``apt-get update`` once if apt-get cannot find them.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

# An entry point run from anywhere: make the repository's `src` package importable.
_REPO_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from src import sample_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Fetch the named artifacts; return the process exit code."""
    known = ", ".join(sample_data.ARTIFACTS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"artifacts to fetch, or 'all' (the default): {known}")
    parser.add_argument("--cache-dir", default=None,
                        help="cache root (default: $BERT_ZOO_CACHE or ~/.cache/bert_zoo)")
    parser.add_argument("--list", action="store_true",
                        help="print name, cached/missing and description of each artifact; fetch nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.list:
        for name, artifact in sample_data.ARTIFACTS.items():
            state = "cached" if sample_data.is_cached(name, args.cache_dir) else "missing"
            print(f"{name}\t{state}\t{artifact.description}")
        return 0

    names = list(sample_data.ARTIFACTS) if not args.names or args.names == ["all"] else args.names
    unknown = [n for n in names if n not in sample_data.ARTIFACTS]
    if unknown:
        parser.error(f"unknown artifact(s) {', '.join(unknown)}; known: {known}, all")
    for name in names:
        try:
            path = sample_data.fetch(name, args.cache_dir)
        except sample_data.FetchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{name}\t{path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
