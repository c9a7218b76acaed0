"""Run integrity (src/run_state.py, src/checkpoint_manager.py): the output directory's lock, the
resume config check, metrics after a resume, and checkpoints verified by their CRC with a
fallback to the newest one that verifies."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import mindspore as ms
import numpy as np
import pytest

from src.checkpoint import CheckpointError
from src.checkpoint_manager import CheckpointManager
from src.config import ClassifierConfig, ConfigError, save_yaml, to_dict
from src.run_state import (OutputLock, check_resume_config, config_differences, run_totals, start_over,
                           truncate_metrics)


# --- the lock ------------------------------------------------------------------------------------
def test_a_second_lock_on_the_same_directory_fails_naming_the_holder(tmp_path):
    with OutputLock(tmp_path / "out"):
        with pytest.raises(ConfigError, match=rf"out is in use by another run \(pid {os.getpid()}\)"):
            OutputLock(tmp_path / "out").acquire()
    with OutputLock(tmp_path / "out"):  # released: free again
        pass


def test_the_lock_dies_with_its_process(tmp_path):
    """A process killed while holding the lock (SIGKILL) leaves the directory free."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from src.run_state import OutputLock
        OutputLock({str(tmp_path / 'out')!r}).acquire()
        print("locked", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "locked" in proc.stdout and proc.returncode == -9
    with OutputLock(tmp_path / "out"):
        pass


def test_an_unwritable_output_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write to output_dir"):
        OutputLock(blocker / "out").acquire()


# --- resuming with another config --------------------------------------------------------------
def test_result_changing_settings_are_refused_and_named(tmp_path):
    saved = ClassifierConfig(seed=1)
    save_yaml(saved, tmp_path / "config.yaml")
    check_resume_config(tmp_path / "config.yaml", ClassifierConfig(seed=1, log_every=7, progress=False,
                                                                   output_dir="elsewhere"), tmp_path / "c.ckpt")
    changed = ClassifierConfig(seed=2)
    changed.optimizer.adamw.learning_rate = 5e-5
    assert config_differences(to_dict(saved), changed) == [
        "optimizer.adamw.learning_rate: 2e-05 -> 5e-05", "seed: 1 -> 2"]
    with pytest.raises(ConfigError, match=r"(?s)optimizer\.adamw\.learning_rate: 2e-05 -> 5e-05.*seed: 1 -> 2.*"
                                          r"--allow_config_change true"):
        check_resume_config(tmp_path / "config.yaml", changed, tmp_path / "c.ckpt")
    changed.allow_config_change = True
    check_resume_config(tmp_path / "config.yaml", changed, tmp_path / "c.ckpt")


# --- metrics after a resume -------------------------------------------------------------------------
def test_metrics_after_the_checkpoint_are_dropped_and_totals_cover_the_run(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"event": "train", "step": s, "loss": float(s), "steps": 2, "samples": 8, "seconds": 1.0}
               for s in (2, 4, 6)] + [{"event": "eval", "step": 4, "dev_accuracy": 0.5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert truncate_metrics(path, 4) == 1
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in kept] == [2, 4, 4]
    assert truncate_metrics(path, 4) == 0
    totals = run_totals(kept)
    assert totals == {"train_loss": 3.0, "train_samples_per_second": 8.0, "train_runtime_s": 2.0}


# --- checkpoints -----------------------------------------------------------------------------------
def _params(value: float) -> list[ms.Parameter]:
    return [ms.Parameter(ms.Tensor(np.full((64, 64), value, np.float32)), name="w"),
            ms.Parameter(ms.Tensor(np.full((3,), value, np.float32)), name="b")]


def _saved(tmp_path, steps=(1, 2, 3)) -> CheckpointManager:
    manager = CheckpointManager(tmp_path / "checkpoints", keep=0, prefix="run")
    for step in steps:
        manager.save(_params(float(step)), step, batches=10 * step, epoch=0)
    return manager


@pytest.mark.parametrize("damage", ["bytes", "truncated", "garbage"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog, damage):
    manager = _saved(tmp_path)
    newest = manager.latest()
    data = bytearray(newest.read_bytes())
    if damage == "bytes":  # same size, a block overwritten: only the checksum can tell
        data[len(data) // 2: len(data) // 2 + 4096] = b"\x7f" * 4096
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"\x00not a checkpoint")
    newest.write_bytes(bytes(data))
    params = _params(0.0)
    with caplog.at_level(logging.WARNING):
        path, meta = manager.restore_latest(params)
    assert path.name == "run-00000002.ckpt" and meta == {"step": 2, "batches": 20, "epoch": 0}
    assert float(params[0].asnumpy()[0, 0]) == 2.0
    assert any("run-00000003.ckpt" in r.message and "skipping" in r.message for r in caplog.records)


def test_no_restorable_checkpoint_is_an_error_naming_them_all(tmp_path):
    manager = _saved(tmp_path, steps=(1, 2))
    for path in manager.checkpoints():
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"(?s)run-00000002\.ckpt.*run-00000001\.ckpt.*--resume false"):
        manager.restore_latest(_params(0.0))
    assert CheckpointManager(tmp_path / "none", prefix="run").restore_latest(_params(0.0)) is None


def test_stale_temporary_files_are_removed(tmp_path):
    manager = _saved(tmp_path, steps=(1,))
    stale = manager.directory / ".run-00000002.abc123.tmp.ckpt"
    stale.write_bytes(b"x" * 1000)
    assert manager.remove_stale_temps() == [stale] and not stale.exists()
    assert [p.name for p in manager.checkpoints()] == ["run-00000001.ckpt"]


def test_start_over_removes_the_earlier_runs_files(tmp_path, caplog):
    manager = _saved(tmp_path, steps=(1, 2))
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("{}\n")
    with caplog.at_level(logging.WARNING):
        start_over(tmp_path, manager, (metrics, tmp_path / "best_model.ckpt"))
    assert not manager.checkpoints() and not metrics.exists()
    assert "2 checkpoint(s), metrics.jsonl" in caplog.text
