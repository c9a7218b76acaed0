"""Speed and memory of tools/create_pretraining_data.py against Google's create_pretraining_data.

The real English Wikipedia sample (shared sample data ``enwiki_dump``) goes through
tools/wiki_to_text.py, is repeated ``--repeat`` times (10: about 26 MB), and both tools turn it
into records with the same vocab (uncased, 30,522) and parameters (max_seq_length 128,
max_predictions_per_seq 20, masked_lm_prob 0.15, dupe_factor 5). Each run is a fresh process
tree; wall time and peak resident memory (summed over the tree, sampled every 50 ms) are
measured. Google's is ``bert.create_pretraining_data`` from the PyPI package bert-tensorflow::

    python benchmarks/bench_pretraining_data.py            # about 3 minutes on 2 cores
    python benchmarks/bench_pretraining_data.py --repeat 2 --skip-google

Prints a Markdown table (pasted into BENCHMARKS.md) and writes results.json in --workdir.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; return wall seconds and the peak RSS of its process tree."""
    import psutil

    log = tempfile.TemporaryFile()  # not a pipe: a chatty child would block on a full pipe
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [proc] + proc.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode:
        log.seek(0)
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{log.read().decode()[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak / 2**20)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, help="copies of the Wikipedia text in the big corpus")
    parser.add_argument("--dupe-factor", type=int, default=5)
    parser.add_argument("--workdir", help="where corpora and records go (default: a temporary directory)")
    parser.add_argument("--skip-google", action="store_true", help="only this project's tool")
    args = parser.parse_args(argv)

    from src.data.wiki import wiki_to_documents, write_documents
    from src.sample_data import fetch

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pretraining_"))
    work.mkdir(parents=True, exist_ok=True)
    vocab = str(fetch("vocab_en"))
    text_dir = work / "text"
    if not (text_dir / "wiki_00000.txt").exists():
        write_documents(wiki_to_documents(fetch("enwiki_dump"), language="en"), text_dir, shard_size_mb=None,
                        prefix="wiki", overwrite=True)
    one = text_dir / "wiki_00000.txt"
    many = work / f"wiki_x{args.repeat}.txt"
    data = one.read_bytes()
    many.write_bytes(data * args.repeat)
    params = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--masked_lm_prob=0.15",
              "--short_seq_prob=0.1", f"--dupe_factor={args.dupe_factor}", "--random_seed=12345",
              "--do_lower_case=True"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def ours(corpus: Path, workers: int, name: str) -> dict:
        out = work / name
        return measure([sys.executable, str(ROOT / "tools" / "create_pretraining_data.py"), f"--input_file={corpus}",
                        f"--output_dir={out}", f"--vocab_file={vocab}", f"--num_workers={workers}",
                        "--progress=false", "--overwrite=true", *params], env)

    def google(corpus: Path, name: str) -> dict:
        return measure([sys.executable, "-m", "bert.create_pretraining_data", f"--input_file={corpus}",
                        f"--output_file={work / name}", f"--vocab_file={vocab}", *params], env)

    results: dict = {"corpus_mb": round(len(data) * args.repeat / 1e6, 1), "repeat": args.repeat,
                     "dupe_factor": args.dupe_factor, "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                     f"Python {platform.python_version()}"}
    results["ours_1x"] = ours(one, 1, "ours_1x")
    results["ours_1proc"] = ours(many, 1, "ours_1proc")
    results["ours_2proc"] = ours(many, 2, "ours_2proc")
    if not args.skip_google:
        results["google_1x"] = google(one, "google_1x.tfrecord")
        results["google"] = google(many, "google.tfrecord")
    summary = json.loads((work / "ours_1proc" / "pretrain-summary.json").read_text())
    results["records"] = summary["rows"]
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"corpus: Wikipedia sample x{args.repeat} = {results['corpus_mb']} MB, dupe_factor {args.dupe_factor}, "
          f"{results['records']:,} records; {results['machine']}\n")
    print("| run | wall s | peak RSS MB | speed vs Google | RSS x{0} / x1 |".format(args.repeat))
    print("| --- | --- | --- | --- | --- |")
    g = results.get("google")
    rows = [("Google create_pretraining_data, 1 process", g, results.get("google_1x")),
            ("this project, 1 process", results["ours_1proc"], results["ours_1x"]),
            ("this project, 2 worker processes", results["ours_2proc"], None)]
    for label, r, base in rows:
        if r is None:
            continue
        speed = f"{g['seconds'] / r['seconds']:.1f}x" if g else "-"
        ratio = f"{r['peak_rss_mb'] / base['peak_rss_mb']:.2f}" if base else "-"
        print(f"| {label} | {r['seconds']:.1f} | {r['peak_rss_mb']} | {speed} | {ratio} |")
    print(f"\nresults: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
