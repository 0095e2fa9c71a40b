"""Kill -9 mid-training, then resume: the step counter and optimizer state continue."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
from curate.train import run_training
run_training(json.loads(open(sys.argv[1]).read()))
"""


def _optimizer_steps(ckpt: Path) -> set[int]:
    import torch
    state = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=False)["state"]
    return {int(s["step"]) for s in state.values()}


@pytest.mark.slow
def test_kill_then_resume_continues(tiny_lm, ni_dir, tmp_path, make_config):
    out = tmp_path / "run"
    cfg = make_config(tiny_lm, ni_dir, out,
                      training={"max_steps": 40, "batch_size": 2, "save_steps": 4, "save_total_limit": 20,
                                "eval_every_epoch": False, "learning_rate": 1e-3})
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    (tmp_path / "train.py").write_text(SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    err = open(tmp_path / "stderr.txt", "wb")
    proc = subprocess.Popen([sys.executable, str(tmp_path / "train.py"), str(tmp_path / "cfg.json")],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    ckpts = out / "checkpoints"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            done = [p for p in ckpts.glob("checkpoint-*") if (p / "trainer_state.json").exists()
                    and (p / "optimizer.pt").exists()] if ckpts.exists() else []
            if any(int(p.name.split("-")[1]) >= 8 for p in done):
                break
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {(tmp_path / 'stderr.txt').read_text()[-2000:]}")
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 240 s")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
    assert proc.returncode == -signal.SIGKILL
    steps_saved = sorted(int(p.name.split("-")[1]) for p in ckpts.glob("checkpoint-*")
                         if (p / "trainer_state.json").exists())
    assert steps_saved and steps_saved[-1] < 40, "killed too late to test resume"
    last = steps_saved[-1]
    assert _optimizer_steps(ckpts / f"checkpoint-{last}") == {last}

    from curate.train import run_training
    r = run_training(cfg)
    assert r.metrics["resumed_from"].endswith(f"checkpoint-{last}")
    assert r.metrics["start_step"] == last            # the step counter continued, not restarted
    assert r.global_step == 40
    assert _optimizer_steps(ckpts / "checkpoint-40") == {40}   # Adam's step count continued too
    logged = [h["step"] for h in r.log_history if "loss" in h]
    assert logged == sorted(set(logged)) and logged[-1] == 40   # no step repeated in the history


def test_resume_skips_a_checkpoint_left_half_written(tmp_path):
    from curate.train.config import TrainConfig
    from curate.train.runner import _last_checkpoint
    ck = tmp_path / "run" / "checkpoints"
    (ck / "checkpoint-8").mkdir(parents=True)
    (ck / "checkpoint-8" / "trainer_state.json").write_text("{}")
    (ck / "checkpoint-12").mkdir()           # killed while saving: no trainer_state.json yet
    cfg = TrainConfig(model="m", data={"train": "x"}, output_dir=str(tmp_path / "run"))
    assert _last_checkpoint(cfg) == str(ck / "checkpoint-8")
