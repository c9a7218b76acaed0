"""Convert TFRecord files (Google's create_pretraining_data output, or fine-tuning records) to MindRecord.

    python tools/tfrecord_to_mindrecord.py data/tf --output-dir data/mr                 # a directory
    python tools/tfrecord_to_mindrecord.py 'data/tf/wiki_*.tfrecord' --output-dir data/mr --num-workers 4
    python tools/tfrecord_to_mindrecord.py a.tfrecord b.tfrecord --output-dir data/mr --overwrite

Each input file becomes one standalone MindRecord file in --output-dir with the same columns
(``x.tfrecord`` -> ``x.mindrecord`` and its ``x.mindrecord.db`` index): int64 features become int32
(a value that does not fit is an error), float features float32. Files are converted in parallel
by a process pool; each output appears atomically when complete, so an interrupted run leaves no
partial output (only hidden ``.x.mindrecord.tmp-*`` directories if killed with SIGKILL). The last
file written is the manifest ``converted-summary.json`` (every file with its rows and sizes), so
that run_pretrain.py can read the directory (see ``pretraining_record_files``). Reading needs no
TensorFlow. Prints a summary: files, rows, time.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import logging
import multiprocessing
import os
import pathlib
import queue
import re
import sys
import time
from typing import List, Optional, Tuple

# An entry point run from anywhere: make the repository's `src` package importable.
_REPO_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from src.data.dataset import file_entry, find_record_files  # noqa: E402
from src.data.output import stop_pool, worker_dies_with_parent  # noqa: E402
from src.data.records import (  # noqa: E402
    Column,
    RecordWriter,
    count_records,
    read_batches,
    record_columns,
    record_format,
)

logger = logging.getLogger("tfrecord_to_mindrecord")

_PROGRESS: Optional["multiprocessing.Queue"] = None  # rows written, reported by workers
_TF_SUFFIX = re.compile(r"\.(tfrecords?|tf_record)(?=$|-)")


MANIFEST = "converted-summary.json"

def output_name(path: pathlib.Path) -> str:
    """``x.tfrecord`` -> ``x.mindrecord``; ``x.tfrecord-00001-of-00004`` -> ``x-00001-of-00004.mindrecord``."""
    name = path.name
    match = _TF_SUFFIX.search(name)
    if match:
        name = name[:match.start()] + name[match.end():]
    return name + ".mindrecord"


def _init_worker(progress: Optional["multiprocessing.Queue"], parent: int) -> None:
    global _PROGRESS
    worker_dies_with_parent(parent)
    _PROGRESS = progress
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")


def convert_file(src: str, dst: str, batch_size: int = 2048) -> Tuple[str, str, int, float]:
    """Converts one TFRecord file to one MindRecord file; returns (src, dst, rows, seconds).

    Raises:
        ValueError: a value does not fit int32, or the row count read differs from the file's.
    """
    start = time.perf_counter()
    columns = [Column(c.name, "int32" if c.is_int else "float32", c.length) for c in record_columns(src)]
    expected = count_records(src)
    try:
        with RecordWriter(dst, columns) as writer:
            for batch in read_batches(src, batch_size=batch_size):
                writer.write(batch)
                if _PROGRESS is not None:
                    _PROGRESS.put(len(next(iter(batch.values()))))
            if writer.num_rows != expected:
                raise ValueError(f"read {writer.num_rows} rows from {src} but it has {expected}")
    except ValueError as err:
        raise ValueError(f"{src}: {err}") from None
    return src, dst, expected, time.perf_counter() - start


def convert(files: List[pathlib.Path], output_dir: pathlib.Path, *, num_workers: int = 1, overwrite: bool = False,
            progress: bool = True, batch_size: int = 2048) -> Tuple[int, int]:
    """Converts the files; returns (files converted, rows). See the module docstring."""
    from tqdm import tqdm

    not_tf = [str(f) for f in files if record_format(f) != "tfrecord"]
    if not_tf:
        raise ValueError(f"not TFRecord files: {', '.join(not_tf[:3])}")
    targets = [output_dir / output_name(f) for f in files]
    seen = {}
    for f, t in zip(files, targets):
        if t in seen:
            raise ValueError(f"{seen[t]} and {f} would both be written to {t}")
        seen[t] = f
    existing = [str(t) for t in targets if t.exists() or pathlib.Path(str(t) + ".db").exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output exists: {', '.join(existing[:3])}{' ...' if len(existing) > 3 else ''} "
                              f"(pass --overwrite)")
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = output_dir / MANIFEST
    manifest.unlink(missing_ok=True)  # written again last, when every file is complete
    written: dict = {}
    total = sum(count_records(f) for f in files)
    bar = tqdm(total=total, unit="rows", disable=not progress, desc="converting")
    jobs = [(str(f), str(t), batch_size) for f, t in zip(files, targets)]
    rows = 0
    try:
        if num_workers <= 1 or len(files) == 1:
            for job in jobs:
                _, dst, n, seconds = convert_file(*job)
                written[dst] = n
                rows += n
                bar.update(n)
                logger.info("%s: %d rows in %.1f s", dst, n, seconds)
        else:
            ctx = multiprocessing.get_context("spawn")  # MindSpore's dataset threads do not survive fork
            progress_queue = ctx.Queue()
            with futures.ProcessPoolExecutor(min(num_workers, len(jobs)), mp_context=ctx,
                                             initializer=_init_worker, initargs=(progress_queue, os.getpid())) as pool:
                pending = {pool.submit(convert_file, *job) for job in jobs}
                try:
                    while pending:
                        done, pending = futures.wait(pending, timeout=0.2, return_when=futures.FIRST_COMPLETED)
                        _drain(progress_queue, bar)
                        for fut in done:
                            _, dst, n, seconds = fut.result()
                            written[dst] = n
                            rows += n
                            logger.info("%s: %d rows in %.1f s", dst, n, seconds)
                except BaseException:  # Ctrl-C or an error: stop the workers now, not after their files
                    stop_pool(pool, pending)
                    raise
            _drain(progress_queue, bar)
            bar.n = rows
            bar.refresh()
    finally:
        bar.close()
    shards = [{**file_entry(pathlib.Path(dst)), "rows": n, "source": str(src)}
              for src, dst in zip(files, map(str, targets)) for n in [written[dst]]]
    tmp = manifest.with_name(f".{manifest.name}.tmp")
    tmp.write_text(json.dumps({"shards": shards, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest)
    return len(jobs), rows


def _drain(progress_queue, bar) -> None:
    while True:
        try:
            bar.update(progress_queue.get_nowait())
        except queue.Empty:
            return


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and convert; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("inputs", nargs="+", help="TFRecord files, directories or globs")
    parser.add_argument("--output-dir", required=True, help="directory for the .mindrecord files")
    parser.add_argument("--num-workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="parallel conversion processes (default: min(4, cores))")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--batch-size", type=int, default=2048, help="rows read and written per step")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    start = time.perf_counter()
    try:
        files = find_record_files(args.inputs)
        n_files, rows = convert(files, pathlib.Path(args.output_dir), num_workers=args.num_workers,
                                overwrite=args.overwrite, progress=not args.no_progress, batch_size=args.batch_size)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: the files converted so far are complete, but {MANIFEST} was not written; rerun with "
              "--overwrite", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - start
    print(f"converted {n_files} file(s), {rows} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):.0f} rows/s) "
          f"-> {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
