"""What keeps a training run's output directory whole: one run at a time, resume only with the
settings the run started with, and metrics that cover the whole run after a resume.

* :class:`OutputLock`: an exclusive ``flock`` on ``OUTPUT_DIR/.run.lock`` held for the run's
  lifetime (the kernel drops it when the process dies, even by SIGKILL); a second run on the same
  directory fails at once, naming the holder's pid.
* :func:`check_resume_config`: the saved ``config.yaml`` against the new config; a difference in
  a setting that changes the result (model, data, optimizer, schedule, seed, batch, ...) is
  refused with the keys listed, unless ``allow_config_change``.
* :func:`truncate_metrics` and :func:`run_totals`: ``metrics.jsonl`` holds each step once after a
  resume (records past the checkpoint's step are dropped), and the run's averages are computed from
  all of its training windows.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from .config import ConfigError, flatten_dict, load_yaml, to_dict

logger = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"

# Settings that do not change what a run computes: they may differ between a run and its resume.
RESULT_NEUTRAL = frozenset({
    "output_dir", "resume", "allow_config_change", "progress", "log_every", "save_checkpoint_steps",
    "keep_checkpoint_max", "device_id", "eval_batch_size", "do_predict", "predict_splits", "eval_data_dir",
    "eval_batches", "eval_train_batches", "peak_tflops", "init_checkpoint",
})


class OutputLock:
    """An exclusive lock on ``directory`` for this process (created if missing).

    Raises:
        ConfigError: another process holds it (its pid is named).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> "OutputLock":
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ConfigError(f"cannot write to output_dir {self.directory}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"output_dir {self.directory} is in use by another run (pid {holder}): wait for it "
                              "to finish or give another --output_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def config_differences(saved: Mapping[str, Any], config: Any) -> list[str]:
    """``key: saved -> new`` for every result-changing setting that differs (dotted keys, sorted)."""
    old, new = flatten_dict(saved), flatten_dict(to_dict(config))
    changed = []
    for key in sorted(set(old) | set(new)):
        if key.split(".")[0] in RESULT_NEUTRAL or old.get(key) == new.get(key):
            continue
        changed.append(f"{key}: {old.get(key, '(absent)')!r} -> {new.get(key, '(absent)')!r}")
    return changed


def check_resume_config(saved_path: Path, config: Any, checkpoint: Path) -> None:
    """Refuse to resume ``checkpoint`` under a config that changes the result.

    Raises:
        ConfigError: naming the differing keys, with how to proceed.
    """
    if not saved_path.exists():
        return
    changed = config_differences(load_yaml(saved_path), config)
    if changed and not getattr(config, "allow_config_change", False):
        raise ConfigError(
            f"{saved_path.parent} holds a run that this config would resume ({checkpoint.name}), but its "
            f"{saved_path.name} differs in {len(changed)} setting(s) that change the result:\n  "
            + "\n  ".join(changed)
            + "\ngive another --output_dir for a new run, --resume false to start this one over (its "
              "checkpoints are replaced), or --allow_config_change true to resume anyway")


def start_over(output: Path, manager, files: Iterable[Path]) -> None:
    """``--resume false`` (or nothing to resume) in a directory with an earlier run's files: remove its
    checkpoints and the given files (metrics, best model), so that nothing of it mixes with this run."""
    old = manager.checkpoints()
    present = [f for f in files if f.exists()]
    if not old and not present:
        return
    logger.warning("starting a new run in %s: removing the earlier run's %s", output,
                   ", ".join([f"{len(old)} checkpoint(s)"] * bool(old) + [f.name for f in present]))
    for path in old + present:
        path.unlink(missing_ok=True)


def resume_or_start(config: Any, manager, state: list, output: Path, metrics_path: Path,
                    run_files: Iterable[Path], is_main: bool = True) -> Optional[dict]:
    """How a training run starts in ``output``: remove the temporary files of killed saves; with
    ``config.resume`` and a checkpoint, check the config against the saved one, restore the newest
    checkpoint that verifies into ``state`` and drop the metrics written after it; otherwise remove
    an earlier run's checkpoints and ``run_files``. Returns the restored checkpoint's meta
    (``step``, ``batches``, ``epoch``), or None for a new run. Only ``is_main`` touches files."""
    if is_main:
        manager.remove_stale_temps()
    latest = manager.latest()
    if latest is not None and config.resume:
        check_resume_config(output / "config.yaml", config, latest)
        restored = manager.restore_latest(state)
        if restored is not None:
            path, meta = restored
            dropped = truncate_metrics(metrics_path, meta["step"]) if is_main else 0
            logger.info("resumed from %s at step %d (%d batches consumed%s)", path, meta["step"], meta["batches"],
                        f"; dropped {dropped} metrics.jsonl records written after it" if dropped else "")
            return meta
    if is_main:
        start_over(output, manager, [metrics_path, *run_files])
    return None


def truncate_metrics(path: Path, step: int) -> int:
    """Drop the records of ``path`` (metrics.jsonl) after ``step`` (written after the checkpoint a run
    resumes from); returns how many were dropped. Rewritten under a temporary name, then renamed."""
    if not path.exists():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    keep = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    dropped = len([line for line in lines if line.strip()]) - len(keep)
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")
        os.replace(tmp, path)
    return dropped


def run_totals(records: Iterable[Mapping[str, Any]]) -> dict[str, Optional[float]]:
    """Whole-run averages from the ``train`` records of metrics.jsonl: the loss weighted by each
    window's optimizer steps, samples/s as all samples over all seconds."""
    steps = loss = samples = seconds = 0.0
    for record in records:
        if record.get("event") != "train" or "steps" not in record:  # (records of earlier versions lack it)
            continue
        steps += record["steps"]
        loss += record["loss"] * record["steps"]
        samples += record["samples"]
        seconds += record["seconds"]
    return {"train_loss": loss / steps if steps else None,
            "train_samples_per_second": samples / seconds if seconds else None,
            "train_runtime_s": seconds}


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


__all__ = ["LOCK_NAME", "OutputLock", "RESULT_NEUTRAL", "check_resume_config", "config_differences",
           "read_metrics", "resume_or_start", "run_totals", "start_over", "truncate_metrics"]
