"""All-or-nothing output for the data tools: everything is written into a temporary directory
beside the target, which is renamed into place at the end (an existing target written by the same
tool is replaced only with ``overwrite``). After an error nothing new is left. Worker processes of
the tools die with their main process (:func:`worker_dies_with_parent`).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Type, Union

PathLike = Union[str, os.PathLike]


def sha256_file(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_output_dir(output_dir: Path, overwrite: bool, marker: str, error: Type[Exception] = ValueError) -> None:
    """``output_dir`` may be created: it is absent or empty, or ``overwrite`` is set and it holds
    ``marker`` (it was written by the same tool). Raises ``error`` otherwise."""
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise error(f"output directory {output_dir} exists and is not a directory")
    if not any(output_dir.iterdir()):
        return
    if not overwrite:
        raise error(f"output directory {output_dir} is not empty: pass overwrite (--overwrite true) to replace it")
    if not (output_dir / marker).is_file():
        raise error(f"refusing to replace {output_dir}: it is not empty and has no {marker}, "
                    "so it was not written by this tool")


@contextlib.contextmanager
def atomic_directory(output_dir: PathLike) -> Iterator[Path]:
    """Yields a temporary directory; on success it replaces ``output_dir``, on error it is removed
    together with any parent directories this call created."""
    output_dir = Path(output_dir)
    parent = output_dir.absolute().parent
    created = []
    ancestor = parent
    while not ancestor.exists():
        created.append(ancestor)
        ancestor = ancestor.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if output_dir.exists():  # empty, or replaced with overwrite
            old = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=parent))
            os.rename(output_dir, old / output_dir.name)
            try:
                os.rename(tmp, output_dir)
            except BaseException:
                os.rename(old / output_dir.name, output_dir)
                old.rmdir()
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for directory in created:  # deepest first
            try:
                directory.rmdir()
            except OSError:
                break
        raise


def worker_dies_with_parent(parent: int) -> None:
    """For a tool's worker process: Linux sends it SIGKILL when its parent dies (even by SIGKILL),
    so no file is written after the main process is gone; it exits at once if the parent is already
    gone; Ctrl-C is ignored (the main process handles it and stops the workers)."""
    import ctypes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the main process still stops its pool when it exits
        pass
    if os.getppid() != parent:
        os._exit(1)


def stop_pool(pool, pending) -> None:
    """After Ctrl-C or an error in a tool's main process: cancel the queued work and kill the
    workers of ``pool`` (a ``ProcessPoolExecutor``) now, rather than after their current task."""
    for future in pending:
        future.cancel()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()


__all__ = ["atomic_directory", "check_output_dir", "sha256_file", "stop_pool", "worker_dies_with_parent"]
