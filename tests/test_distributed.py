"""Data-parallel training: `torchrun --nproc_per_node=2 isr_train D ssft` on CPU (gloo); only rank 0 writes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from isrnet.acquisition import simulate_thick_slices
from training_support import (debug_of, isr_train as isr_train_in_process, load, plan_and_preprocess,
                              single_thread,  # noqa: F401  (fixture; torchrun's processes get OMP_NUM_THREADS=1)
                              small_plan_overrides, spheres_phantom, write_target)

pytestmark = pytest.mark.usefixtures("single_thread")

DATASET = "Dataset003_Ddp"


def _script(name: str) -> str | None:
    """The console script installed beside this interpreter (a pyenv shim would be a shell script)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def test_torchrun_two_processes_train_one_run(folders, monkeypatch, capsys) -> None:
    isr_train = _script("isr_train")
    if isr_train is None:
        pytest.skip("isr_train is not installed (pip install -e .)")
    low = simulate_thick_slices(spheres_phantom((40, 40, 40), seed=3), 0, 4, 4.0)[0]
    write_target(folders.raw, DATASET, {"case": low})
    plan_and_preprocess(monkeypatch, capsys, "-d", "3", "--set", *small_plan_overrides(batch=2))

    torchrun = _script("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    command = [*launcher, "--standalone", "--nproc_per_node=2", isr_train, "3", "ssft", "--from-scratch",
               "--iterations", "4"]  # default --workers 1: each rank has a sampling process
    environment = dict(os.environ, OMP_NUM_THREADS="1", isrnet_raw=str(folders.raw),
                       isrnet_preprocessed=str(folders.preprocessed), isrnet_results=str(folders.results))
    done = subprocess.run(command, env=environment, capture_output=True, encoding="utf-8",
                          errors="replace", timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output

    assert [p.name for p in folders.results.iterdir()] == [DATASET]
    assert [p.name for p in (folders.results / DATASET).iterdir()] == ["ssft"]
    folder = folders.results / DATASET / "ssft"
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "checkpoint_best.pth", "checkpoint_final.pth", "checkpoint_latest.pth", "debug.json", "plans.json",
        "progress.png", "training_log.txt"])
    debug = debug_of(folder)
    assert debug["world_size"] == 2 and debug["iterations"] == debug["iterations_done"] == 4
    log = (folder / "training_log.txt").read_text()
    assert log.count("finished 4 iterations") == 1 and log.count("initial weights") == 1
    assert output.count("finished 4 iterations") == 1  # rank 1 prints nothing either
    final = load(folder / "checkpoint_final.pth")
    assert final["iteration"] == 4 and len(final["history"]["loss"]) == 4
    assert not any(key.startswith("module.") for key in final["state_dict"])  # saved unwrapped from DDP

    # rank 0 saw the same batches a single process would; the weights moved differently because the
    # gradients were averaged with rank 1's
    isr_train_in_process(monkeypatch, capsys, "3", "ssft", "--from-scratch", "--iterations", "4", "--workers", "0",
                         "--tag", "single")
    single = load(folders.results / DATASET / "ssft__single" / "checkpoint_final.pth")["history"]["loss"]
    assert abs(single[0] - final["history"]["loss"][0]) < 1e-6
    assert single[1:] != final["history"]["loss"][1:]
    assert debug_of(folders.results / DATASET / "ssft__single")["world_size"] == 1
