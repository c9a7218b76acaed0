"""Text files -> sharded pretraining records, streaming, over worker processes and MPI ranks.

The input is read as a stream and cut into *chunks* of about ``chunk_chars`` characters at
document boundaries. Each chunk is tokenized (Rust WordPiece, batched), turned into instances
``dupe_factor`` times (:mod:`src.data.pretraining`), shuffled and written to its own shard
``PREFIX-FFFFF-CCCC.mindrecord`` (input file F, chunk C). So:

* memory is bounded by the chunk size, whatever the corpus size (Google keeps every instance);
* chunks are independent: worker processes take them in turn, MPI ranks take whole input files
  (``files[rank::size]``), and each chunk's random seed derives from ``(seed, file, chunk)``, so the
  output does not depend on the number of workers or ranks;
* random next sentences come from other documents of the same chunk (thousands of documents
  at the default size), and the shuffle is within a chunk; the loader shuffles across shards.

Every shard is written under a temporary name and renamed when complete. The run ends by writing
``PREFIX-summary.json`` (parameters, vocab checksum, shards with rows and sizes, statistics): the
manifest, committed last, without which run_pretrain.py refuses the directory
(:func:`src.data.dataset.pretraining_record_files`). An output directory that already holds
records is refused unless ``overwrite``, which removes the earlier run's summary first, then its
files. Worker processes die with the main process (even after SIGKILL) and ignore Ctrl-C, which
the main process handles.
"""
from __future__ import annotations

import concurrent.futures as cf
import glob
import hashlib
import json
import logging
import multiprocessing
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..config import PretrainingDataConfig
from .dataset import file_entry
from .output import stop_pool, worker_dies_with_parent
from .pretraining import (GenerationStats, MaskingParams, Spans, TokenizedChunk, build_records, line_spans,
                         nsp_spans)

Sentence = tuple[list[int], Optional[list[bool]]]

logger = logging.getLogger(__name__)


class InputError(ValueError):
    """An input file is missing, empty or not valid UTF-8 (the message names the file)."""


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def expand_inputs(patterns: Sequence[str]) -> list[Path]:
    """Files, directories (every file inside, sorted) and globs -> sorted list of files."""
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif any(ch in pattern for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        elif path.is_file():
            found = [path]
        else:
            raise InputError(f"input {pattern} does not exist")
        if not found:
            raise InputError(f"input {pattern} matches no files")
        files.extend(found)
    if not files:
        raise InputError("no input files given (input_file)")
    return files


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(bytes read so far, stripped text), with invalid UTF-8 reported by file, line and byte offset."""
    offset = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(f"{path}: line {number} is not valid UTF-8 (byte offset "
                                 f"{offset + err.start}: {raw[err.start:err.start + 4]!r})") from None
            offset += len(raw)
            yield offset, text.strip()


def read_chunks(path: Path, chunk_chars: int, line_by_line: bool) -> Iterator[tuple[list[list[str]], int]]:
    """(documents, bytes) chunks of about ``chunk_chars`` characters; documents are lists of lines.

    NSP mode: a blank line ends a document. Line-by-line mode: each line is its own "document".
    """
    chunk: list[list[str]] = []
    chars = 0
    document: list[str] = []
    offset = done = 0
    for offset, line in _lines(path):
        if line:
            document.append(line)
            chars += len(line)
        if document and (not line or line_by_line):
            chunk.append(document)
            document = []
            if chars >= chunk_chars:
                yield chunk, offset - done
                chunk, chars, done = [], 0, offset
    if document:
        chunk.append(document)
    if chunk:
        yield chunk, offset - done


def read_ref_file(path: Path) -> Iterator[list[int]]:
    """HF run_chinese_ref.py reference lines: JSON lists of continuation token indices ([CLS] = 0)."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}: line {number} is not a JSON list ({err})") from None
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise InputError(f"{path}: line {number} must be a JSON list of token indices, got {line[:80]!r}")
            yield value


# --------------------------------------------------------------------------------------
# Work on one chunk (runs in a worker process)
# --------------------------------------------------------------------------------------
@dataclass
class ChunkTask:
    file_index: int
    chunk_index: int
    documents: list[list[str]]
    output: str
    nbytes: int
    refs: Optional[list[list[int]]] = None  # one per line of the chunk, in order


@dataclass
class ChunkResult:
    output: str
    rows: int
    stats: GenerationStats
    nbytes: int


class ChunkProcessor:
    """Tokenizes a chunk, generates instances ``dupe_factor`` times, writes one shard."""

    def __init__(self, config: PretrainingDataConfig):
        from ..tokenization import FullTokenizer

        self.config = config
        self.tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
        tok = self.tokenizer
        self.params = MaskingParams(
            max_seq_length=config.max_seq_length, max_predictions_per_seq=config.max_predictions_per_seq,
            masked_lm_prob=config.masked_lm_prob, short_seq_prob=config.short_seq_prob,
            whole_word_mask=config.do_whole_word_mask, cls_id=tok.cls_id, sep_id=tok.sep_id,
            mask_id=tok.mask_id, vocab_size=tok.vocab_size)
        # word starts from WordPiece: a '##' piece continues the previous word
        self.piece_starts = np.array([not t.startswith("##") for t in sorted(tok.vocab, key=tok.vocab.get)])
        self.segmenter = None
        if config.do_whole_word_mask and config.word_segmenter == "jieba":
            import jieba
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            self.segmenter = jieba

    def _sentences(self, lines: list[str], refs: Optional[list[list[int]]]) -> list[Sentence]:
        """Token ids of each line, with word-start flags when whole-word masking is on."""
        if self.config.do_whole_word_mask and self.segmenter is not None:
            return [(ids, self._jieba_flags(line, ids, offsets))
                    for line, (ids, offsets) in zip(lines, self.tokenizer.ids_with_offsets_batch(lines))]
        ids_list = self.tokenizer.ids_batch(lines)
        if not self.config.do_whole_word_mask:
            return [(ids, None) for ids in ids_list]
        if refs is not None:
            out = []
            for ids, ref in zip(ids_list, refs):
                flags = [True] * len(ids)
                for index in ref:
                    if 1 <= index <= len(ids):
                        flags[index - 1] = False
                out.append((ids, flags))
            return out
        starts = self.piece_starts
        return [(ids, starts[ids].tolist() if ids else []) for ids in ids_list]

    def _jieba_flags(self, line: str, ids: list[int], offsets: Optional[list[int]]) -> list[bool]:
        """A token starts a word unless it is a ## piece or jieba puts its first character inside a word."""
        pieces = self.piece_starts[ids].tolist() if ids else []
        if offsets is None:  # the text took the exact slow path: word pieces only
            return pieces
        inside = np.zeros(len(line) + 1, bool)
        position = 0
        for word in self.segmenter.cut(line):
            inside[position + 1: position + len(word)] = True
            position += len(word)
        return [start and not inside[o] for start, o in zip(pieces, offsets)]

    def build(self, task: ChunkTask) -> tuple[dict[str, np.ndarray], GenerationStats]:
        """Tokenize the chunk and build its records (``dupe_factor`` passes, shuffled)."""
        config = self.config
        lines = [line for doc in task.documents for line in doc]
        sentences = iter(self._sentences(lines, task.refs))
        chunk = TokenizedChunk.from_documents([[next(sentences) for _ in doc] for doc in task.documents])
        stats = GenerationStats(documents=chunk.num_documents, sentences=chunk.num_sentences)
        rng = random.Random(f"{config.random_seed}:{task.file_index}:{task.chunk_index}")
        spans = Spans()
        for _ in range(config.dupe_factor):
            if config.mode == "line_by_line":
                spans.extend(line_spans(chunk, self.params, config.pack_lines, stats))
            else:
                spans.extend(nsp_spans(chunk, self.params, rng, stats))
        records = build_records(chunk, spans, self.params, config.mode == "nsp",
                                np.random.default_rng(rng.getrandbits(63)), stats)
        return records, stats

    def write(self, task: ChunkTask, records: dict[str, np.ndarray]) -> int:
        """Write one shard atomically; returns its row count (no file for an empty chunk)."""
        from .records import RecordWriter, pretraining_columns

        rows = len(records["input_ids"]) if records else 0
        if rows:
            columns = pretraining_columns(self.config.max_seq_length, self.config.max_predictions_per_seq)
            with RecordWriter(task.output, columns, write_schema=False) as writer:
                writer.write(records)
        return rows

    def __call__(self, task: ChunkTask) -> ChunkResult:
        records, stats = self.build(task)
        rows = self.write(task, records)
        return ChunkResult(task.output if rows else "", rows, stats, task.nbytes)


def _write_result(processor: ChunkProcessor, task: ChunkTask, records: dict, stats: GenerationStats) -> ChunkResult:
    rows = processor.write(task, records)
    return ChunkResult(task.output if rows else "", rows, stats, task.nbytes)


_PROCESSOR: Optional[ChunkProcessor] = None


def _init_worker(config: PretrainingDataConfig, parent: int) -> None:
    global _PROCESSOR
    worker_dies_with_parent(parent)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker process
    _PROCESSOR = ChunkProcessor(config)


def _run_task(task: ChunkTask) -> ChunkResult:
    assert _PROCESSOR is not None
    return _PROCESSOR(task)



# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def _mpi():
    """(rank, size, comm) under mpirun with mpi4py, else (0, 1, None)."""
    if not any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")):
        return 0, 1, None
    try:
        from mpi4py import MPI
    except ImportError:
        logger.warning("launched under MPI but mpi4py is not installed: every rank processes every file")
        return 0, 1, None
    comm = MPI.COMM_WORLD
    return comm.Get_rank(), comm.Get_size(), comm


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tasks(config: PretrainingDataConfig, files: list[tuple[int, Path]], ext: str) -> Iterator[ChunkTask]:
    refs_by_file = {i: Path(config.wwm_ref_file[i]) for i, _ in files} if config.wwm_ref_file else {}
    for file_index, path in files:
        refs = read_ref_file(refs_by_file[file_index]) if refs_by_file else None
        produced = False
        for chunk_index, (documents, nbytes) in enumerate(read_chunks(path, config.chunk_chars,
                                                            config.mode == "line_by_line")):
            produced = True
            chunk_refs = None
            if refs is not None:
                chunk_refs = []
                for _ in range(sum(len(d) for d in documents)):
                    try:
                        chunk_refs.append(next(refs))
                    except StopIteration:
                        raise InputError(f"{refs_by_file[file_index]} has fewer lines than the text lines "
                                         f"of {path}") from None
            name = f"{config.output_prefix}-{file_index:05d}-{chunk_index:04d}.{ext}"
            yield ChunkTask(file_index, chunk_index, documents, str(Path(config.output_dir) / name), nbytes,
                            chunk_refs)
        if not produced:
            raise InputError(f"input file {path} contains no text")


def create_pretraining_data(config: PretrainingDataConfig) -> dict:
    """Run the whole pipeline; returns the summary (also written as PREFIX-summary.json by rank 0)."""
    from tqdm import tqdm

    from ..tokenization import load_vocab

    if not config.output_dir:
        raise InputError("output_dir is not set")
    if not config.vocab_file:
        raise InputError("vocab_file is not set")
    start = time.perf_counter()
    rank, world, comm = _mpi()
    all_files = expand_inputs(config.input_file)
    if config.wwm_ref_file and len(config.wwm_ref_file) != len(all_files):
        raise InputError(f"{len(config.wwm_ref_file)} wwm_ref_file given for {len(all_files)} input files")
    if config.mode == "line_by_line" and config.short_seq_prob:
        logger.info("line_by_line mode: short_seq_prob is not used")
    vocab = load_vocab(config.vocab_file)
    for token in ("[CLS]", "[SEP]", "[MASK]"):
        if token not in vocab:
            raise InputError(f"vocab file {config.vocab_file} has no {token} token")
    files = [(i, f) for i, f in enumerate(all_files) if i % world == rank]
    if rank == 0:
        prepare_output_dir(Path(config.output_dir), config.overwrite)
    if comm is not None:
        comm.Barrier()
    ext = config.output_format
    total_bytes = sum(f.stat().st_size for _, f in files)

    results: list[ChunkResult] = []
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=f"rank {rank}" if world > 1 else "records",
               disable=not config.progress or rank != 0)
    try:
        if config.num_workers == 1:
            # one process: the next chunk is built while a thread writes the previous one (the
            # MindRecord/TFRecord writers spend their time in C++ without the GIL)
            processor = ChunkProcessor(config)
            with cf.ThreadPoolExecutor(1) as writer:
                previous: Optional[cf.Future] = None
                for task in _tasks(config, files, ext):
                    records, stats = processor.build(task)
                    if previous is not None:
                        results.append(previous.result())
                        bar.update(results[-1].nbytes)
                    previous = writer.submit(_write_result, processor, task, records, stats)
                if previous is not None:
                    results.append(previous.result())
                    bar.update(results[-1].nbytes)
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(config.num_workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=(config, os.getpid())) as pool:
                pending: set[cf.Future] = set()
                try:
                    for task in _tasks(config, files, ext):
                        while len(pending) > config.num_workers:  # bounded: memory does not grow with the corpus
                            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                            for future in done:
                                results.append(future.result())
                                bar.update(results[-1].nbytes)
                        pending.add(pool.submit(_run_task, task))
                    for future in cf.as_completed(pending):
                        results.append(future.result())
                        bar.update(results[-1].nbytes)
                except BaseException:  # Ctrl-C or an error: stop the workers now, not after their chunks
                    stop_pool(pool, pending)
                    raise
    finally:
        bar.close()

    stats = GenerationStats()
    for result in results:
        stats.merge(result.stats)
    shards = sorted((Path(r.output).name, r.rows, rank, file_entry(Path(r.output))) for r in results if r.rows)
    if comm is not None:
        gathered = comm.gather((stats, shards), root=0)
        if rank != 0:
            return {}
        stats = GenerationStats()
        shards = []
        for part_stats, part_shards in gathered:
            stats.merge(part_stats)
            shards.extend(part_shards)
        shards.sort()
    if not shards:
        raise InputError(f"no records were produced from {', '.join(map(str, all_files))}")
    elapsed = time.perf_counter() - start
    summary = {
        "config": asdict(config),
        "vocab_size": len(vocab),
        "vocab_sha256": file_sha256(config.vocab_file),
        "input_files": [str(f) for f in all_files],
        "shards": [{**entry, "rows": rows, "rank": r} for _, rows, r, entry in shards],
        "rows": sum(rows for _, rows, _, _ in shards),
        "stats": stats.as_dict(),
        "seconds": round(elapsed, 2),
        "ranks": world,
    }
    _write_json(Path(config.output_dir) / f"{config.output_prefix}-summary.json", summary)
    if config.output_format == "tfrecord":
        from .records import pretraining_columns, write_tfrecord_schema
        write_tfrecord_schema(Path(config.output_dir) / f"{config.output_prefix}-schema.json",
                              pretraining_columns(config.max_seq_length, config.max_predictions_per_seq),
                              summary["rows"])
    return summary


def prepare_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Create ``output_dir``; if it holds records or manifests of an earlier run, refuse unless
    ``overwrite``, and then remove them: the summaries first (a directory without its manifest is
    refused by the readers, so an interruption here leaves nothing that looks complete)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    summaries = sorted(output_dir.glob("*-summary.json"))
    records = sorted(p for pattern in ("*.mindrecord", "*.mindrecord.db", "*.tfrecord", "*.tfrecords",
                                       "*-schema.json") for p in output_dir.glob(pattern))
    temps = sorted(p for p in output_dir.iterdir() if p.name.startswith(".") and ".tmp" in p.name)
    if not (summaries or records or temps):
        return
    if not overwrite:
        raise InputError(f"output_dir {output_dir} already holds {len(records)} record, {len(summaries)} summary and "
                         f"{len(temps)} temporary file(s) of an earlier run: pass --overwrite true to replace "
                         "them, or give another --output_dir")
    logger.info("overwrite: removing %d summary and %d record files of the earlier run in %s", len(summaries),
                len(records), output_dir)
    for path in summaries + records:
        path.unlink(missing_ok=True)
    for path in temps:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
