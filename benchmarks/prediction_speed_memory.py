"""End-to-end `isr_predict` speed and peak memory on this machine (start-up, reading and writing included).

Cases (synthetic volumes; speed does not depend on the weights, so an untrained network is used unless
-m is given). Each case is one `isr_predict` call on a folder, timed from process start to exit; the peak
memory is that process's own maximum resident set size.
  speed:   181 x 217 x 46 at 1 x 1 x 4 mm, x4  (target: >= 500 000 output voxels/s)
  folder3: three volumes 181 x 217 x {46, 53, 60} at 1 x 1 x 4 mm, x4, in one call
  memory:  512 x 512 x 60 at 0.5 x 0.5 x 3 mm, x6 (target: <= 4 GB peak RSS on CPU)
Usage: python benchmarks/prediction_speed_memory.py [-m CHECKPOINT] [--cases speed folder3 memory] [-device cuda]
       [-- EXTRA isr_predict ARGUMENTS]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from isrnet.configuration import DEFAULT_NETWORK
from isrnet.imageio import Volume, read_volume, write_volume
from isrnet.networks import build_network
from isrnet.training.checkpointing import save_checkpoint

CASES = {"speed": ([(46, 217, 181)], (4.0, 1.0, 1.0)),
         "folder3": ([(46, 217, 181), (53, 217, 181), (60, 217, 181)], (4.0, 1.0, 1.0)),
         "memory": ([(60, 512, 512)], (3.0, 0.5, 0.5))}
# the child reports its own peak resident memory when it exits (after isr_predict's sys.exit)
CHILD = ("import atexit, resource, sys; atexit.register(lambda: print('PEAK_KB', resource.getrusage("
         "resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); from isrnet.cli.predict import main; main()")


def phantom(shape: tuple[int, int, int]) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    head = (z ** 2 + y ** 2 + x ** 2 < 0.8).astype(np.float32)
    return (1000 * head * (0.6 + 0.4 * np.sin(9 * x) * np.cos(7 * y) * np.cos(5 * z))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", dest="model", help="checkpoint (default: an untrained network)")
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("-device", default="cpu")
    parser.add_argument("extra", nargs="*", help="further isr_predict arguments (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model = args.model
        if model is None:
            model = folder / "checkpoint_final.pth"
            save_checkpoint({"network": DEFAULT_NETWORK, "state_dict": build_network(DEFAULT_NETWORK).state_dict()},
                            model)
        for name in args.cases:
            shapes, spacing = CASES[name]
            source = folder / name
            for index, shape in enumerate(shapes):
                write_volume(Volume(phantom(shape), spacing), source / f"{name}_{index}.nii.gz")
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", CHILD, "-i", str(source), "-o", str(folder / f"{name}_out"),
                                   "-m", str(model), "-device", args.device, *args.extra],
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode:
                sys.exit(done.stderr)
            peak_gb = int(done.stderr.rsplit("PEAK_KB", 1)[1].split()[0]) / 2**20
            voxels = sum(read_volume(folder / f"{name}_out" / f"{name}_{i}.nii.gz").array.size
                         for i in range(len(shapes)))
            sizes = ", ".join("x".join(map(str, shape[::-1])) for shape in shapes)
            print(f"{name}: {sizes} at x{spacing[0] / min(spacing[1:]):g}: {seconds:.1f} s end to end, "
                  f"{voxels / seconds / 1e6:.2f} M output voxels/s, peak RSS {peak_gb:.2f} GB "
                  f"({torch.get_num_threads()} threads, {args.device})", flush=True)


if __name__ == "__main__":
    main()
