"""Where a result came from: the command line, the source revision and the machine, recorded beside it."""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from isrnet import __version__

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def command_line() -> str:
    """The command as the user typed it (console-script name, not the Python path)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return shlex.join([program, *sys.argv[1:]])


def git_commit() -> str | None:
    """HEAD of the source checkout isrnet runs from, with '+uncommitted' when it has local changes; None if
    isrnet was not installed from a git checkout."""
    if not (SOURCE_ROOT / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(SOURCE_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(SOURCE_ROOT), "status", "--porcelain", "--untracked-files=no",
                                "--", "isrnet"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+uncommitted" if dirty else "")


def machine() -> dict:
    """What the numbers were measured on."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__, "isrnet": __version__}
