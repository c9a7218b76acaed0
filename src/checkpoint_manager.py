"""Training checkpoints: every Parameter of the train step plus the data position, written
atomically with a CRC32 of their content, the last K kept, and on resume the newest one that
verifies restored (a corrupt or unreadable newer one is skipped with a warning naming it).

A checkpoint ``PREFIX-STEP.ckpt`` holds the model weights under their canonical names
(``bert.*``, ``cls.*``: it loads into any network of this zoo, see src/checkpoint.py), the optimizer
moments and step, the loss scale and its counter, gradient-accumulation buffers, and
``meta.*`` entries: the optimizer step, the number of batches consumed and the epoch.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Optional

import mindspore as ms
import numpy as np

from .checkpoint import CheckpointError, assign_in_place, has_crc

logger = logging.getLogger(__name__)

META_KEYS = ("step", "batches", "epoch")
OPTIONAL = frozenset({"dropout_rng.counter"})  # state that checkpoints of earlier versions lack

class CheckpointManager:
    """Save, prune, find and restore training checkpoints in ``directory``.

    Args:
        directory: where ``PREFIX-STEP.ckpt`` files go.
        keep: how many of the newest checkpoints to keep (0 keeps all).
        prefix: file-name prefix.
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 3, prefix: str = "checkpoint"):
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.directory = Path(directory)
        self.keep = keep
        self.prefix = prefix
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.ckpt$")

    def remove_stale_temps(self) -> list[Path]:
        """Delete the temporary files of saves that were killed (call it while holding the run's lock)."""
        if not self.directory.is_dir():
            return []
        stale = [p for p in self.directory.glob(f".{self.prefix}-*.tmp.ckpt")]
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            logger.info("removed %d temporary file(s) of interrupted checkpoint saves in %s", len(stale),
                        self.directory)
        return stale

    def checkpoints(self) -> list[Path]:
        """Existing checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := self._pattern.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Optional[Path]:
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, params: Iterable[ms.Parameter], step: int, batches: int, epoch: int) -> Path:
        """Write the checkpoint for ``step`` (temporary name, then rename) and prune old ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{self.prefix}-{step:08d}.ckpt"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{target.stem}.", suffix=".tmp.ckpt")
        os.close(fd)
        try:
            entries = [{"name": p.name, "data": p.value() if hasattr(p, "value") else p} for p in params]
            meta = {f"meta.{k}": ms.Tensor(np.array(v, np.int64)) for k, v in
                    (("step", step), ("batches", batches), ("epoch", epoch))}
            entries += [{"name": k, "data": v} for k, v in meta.items()]
            ms.save_checkpoint(entries, tmp, crc_check=True)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        if self.keep:
            for old in self.checkpoints()[: -self.keep]:
                old.unlink(missing_ok=True)
        return target

    def restore_latest(self, params: Iterable[ms.Parameter]) -> Optional[tuple[Path, dict]]:
        """Restore the newest checkpoint that reads and verifies; ``(path, meta)``, or None when there is
        no checkpoint. Newer ones that fail are skipped, each with a warning naming it and why.

        Raises:
            CheckpointError: there are checkpoints and none of them can be restored (all named).
        """
        params = list(params)
        failures = []
        for path in reversed(self.checkpoints()):
            try:
                meta = self.restore(path, params)
            except CheckpointError as err:
                logger.warning("skipping checkpoint %s: %s", path, err)
                failures.append(f"{path.name}: {err}")
                continue
            if failures:
                logger.warning("resuming from %s, the newest checkpoint that verifies", path)
            return path, meta
        if failures:
            raise CheckpointError(f"no checkpoint in {self.directory} can be restored:\n  " + "\n  ".join(failures)
                                  + "\nstart over with --resume false or give another --output_dir")
        return None

    @staticmethod
    def restore(path: str | os.PathLike, params: Iterable[ms.Parameter]) -> dict:
        """Load ``path`` into ``params`` (every one must be present with its shape); returns the meta dict.
        Its CRC32 is verified when it has one (every checkpoint this class writes).

        Raises:
            CheckpointError: unreadable or corrupt file, missing parameter or shape mismatch (named).
        """
        path = Path(path)
        try:
            saved = ms.load_checkpoint(str(path), crc_check=has_crc(path))
        except Exception as err:  # MindSpore raises ValueError/RuntimeError for a bad file
            raise CheckpointError(f"cannot resume from {path}: not a readable MindSpore checkpoint or its "
                                  f"content does not match its checksum ({str(err).splitlines()[0]})") from None
        params = list(params)
        optional = [p for p in params if p.name in OPTIONAL and p.name not in saved]
        if optional:
            logger.warning("%s has no %s (written by an earlier version): training continues, but its dropout "
                           "masks differ from an uninterrupted run's", path, ", ".join(p.name for p in optional))
            params = [p for p in params if p.name not in OPTIONAL or p.name in saved]
        missing = [p.name for p in params if p.name not in saved]
        if missing:
            raise CheckpointError(f"cannot resume from {path}: it lacks {len(missing)} parameters of this run, "
                                  f"e.g. {missing[:3]} (was it written with another config?)")
        for p in params:
            value = saved[p.name]
            if tuple(value.shape) != tuple(p.shape):
                raise CheckpointError(f"cannot resume from {path}: {p.name} has shape {tuple(value.shape)} "
                                      f"there but {tuple(p.shape)} in this run")
        for p in params:
            assign_in_place(p, saved[p.name])
        missing_meta = [k for k in META_KEYS if f"meta.{k}" not in saved]
        if missing_meta:
            raise CheckpointError(f"cannot resume from {path}: no {missing_meta} entries (not a training checkpoint)")
        return {k: int(saved[f"meta.{k}"].asnumpy()) for k in META_KEYS}
