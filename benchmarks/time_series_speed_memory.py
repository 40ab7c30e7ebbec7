"""Time series through `isr_predict`: peak memory against the frame count, and frames batched against one frame per
network call.

memory: one `isr_predict` process per series of 10 and of 60 frames (256 x 256 x 12 per frame at 1.25 x 1.25 x 7.5
        mm, x6, a 4D NIfTI), its own peak resident memory. Target: the 60-frame peak <= 1.1 x the 10-frame peak.
batch:  in one process, the same frames predicted with `frames_per_call` 1 and `gaps_per_call` 1 (one frame per
        network call) and with several frames sharing each call, timed interleaved (A B A B ...), the ratio pair by
        pair; the outputs are checked to be equal. Target: batched >= 1.2 x faster.
Usage: python benchmarks/time_series_speed_memory.py [--cases memory batch] [--frames-per-call 4] [--gaps-per-call 16]
       [--size 256] [-device cpu|cuda]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from isrnet.imageio import Volume
from isrnet.imageio.reader_writer import open_frame_sink
from isrnet.imageio.time_series import TimeAxis
from isrnet.pretrained import shipped_weights

SPACING = (7.5, 1.25, 1.25)  # slices first
FACTOR = 6
CHILD = ("import atexit, resource, sys; atexit.register(lambda: print('PEAK_KB', resource.getrusage("
         "resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); from isrnet.cli.predict import main; main()")


def frame(t: int, size: int, slices: int = 12) -> Volume:
    """A beating disc with texture and noise: frame `t` of a cine-like series."""
    rng = np.random.default_rng(t)
    z, y, x = np.meshgrid(np.arange(slices), np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    radius = 0.6 + 0.05 * np.sin(2 * np.pi * t / 25) + 0.01 * z
    body = (x ** 2 + y ** 2) < radius ** 2
    heart = ((x - 0.1) ** 2 + (y + 0.1) ** 2) < (0.2 + 0.04 * np.cos(2 * np.pi * t / 25)) ** 2
    array = 400 * body * (0.6 + 0.3 * np.sin(11 * x + z) * np.cos(9 * y)) + 500 * heart + rng.normal(0, 10, z.shape)
    return Volume(array.astype(np.int16), SPACING)


def write_series(path: Path, frames: int, size: int) -> Path:
    with open_frame_sink(path, TimeAxis(frames, 40.0, "msec"), "int16") as sink:
        for t in range(frames):
            sink.write(frame(t, size))
    return path


def memory(folder: Path, size: int, device: str) -> None:
    peaks = {}
    for frames in (10, 60):
        source = write_series(folder / f"in{frames}" / f"cine{frames}.nii.gz", frames, size)
        start = time.time()
        done = subprocess.run([sys.executable, "-c", CHILD, "-i", str(source), "-o", str(folder / f"out{frames}"),
                               "--factor", str(FACTOR), "-device", device], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        peaks[frames] = int(done.stderr.split("PEAK_KB")[-1].split()[0]) / 1024
        print(f"memory: {frames} frames of {size}x{size}x12 (x{FACTOR}): peak {peaks[frames]:.0f} MB, "
              f"{time.time() - start:.1f} s", flush=True)
    print(f"memory: 60-frame peak / 10-frame peak = {peaks[60] / peaks[10]:.3f} (target <= 1.1)")


def batch(size: int, frames: int, frames_per_call: int, gaps_per_call: int, device: str, repeats: int) -> None:
    import torch

    from isrnet.inference.predictor import PredictionSettings, Predictor

    torch.set_num_threads(torch.get_num_threads())
    predictor = Predictor.from_checkpoint(shipped_weights("mrft"), device)
    volumes = [frame(t, size) for t in range(frames)]
    volumes = [v.with_array(v.array.astype(np.float32)) for v in volumes]
    settings, profile = predictor.resolve(volumes[0], PredictionSettings(factor=FACTOR))
    one = replace(predictor.acceleration, frames_per_call=1, gaps_per_call=1)
    batched = replace(predictor.acceleration, frames_per_call=frames_per_call, gaps_per_call=gaps_per_call)

    def timed(acceleration) -> tuple[float, list[np.ndarray]]:
        predictor.acceleration = acceleration
        start = time.perf_counter()
        arrays = [p.volume.array for p in predictor.run_frames(volumes, settings, profile)]
        return time.perf_counter() - start, arrays

    timed(one)  # warm-up: oneDNN compiles each shape once
    ratios, times_one, times_batched = [], [], []
    for _ in range(repeats):
        a, out_one = timed(one)
        b, out_batched = timed(batched)
        times_one.append(a)
        times_batched.append(b)
        ratios.append(a / b)
    difference = max(float(np.abs(x - y).max()) for x, y in zip(out_one, out_batched))
    print(f"batch: {frames} frames of {size}x{size}x12 (x{FACTOR}) on {device}: one frame per call median "
          f"{np.median(times_one):.2f} s, {frames_per_call} frames / {gaps_per_call} gaps per call median "
          f"{np.median(times_batched):.2f} s; speed-up pair by pair median {np.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}); largest difference {difference:.2e} (target >= 1.2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["memory", "batch"], choices=("memory", "batch"))
    parser.add_argument("--size", type=int, default=256, help="in-plane size of a frame (default 256)")
    parser.add_argument("--frames", type=int, default=8, help="frames in the batch case (default 8)")
    parser.add_argument("--frames-per-call", type=int, default=4)
    parser.add_argument("--gaps-per-call", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="isrnet_time_series_") as folder:
        if "memory" in args.cases:
            memory(Path(folder), args.size, args.device)
        if "batch" in args.cases:
            batch(args.size, args.frames, args.frames_per_call, args.gaps_per_call, args.device, args.repeats)


if __name__ == "__main__":
    main()
