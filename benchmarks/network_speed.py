"""Network speed on this machine: a 256x256x10 volume at x4 (the SA-INR reference case, ~223 s on 2 CPU cores).

Usage: python benchmarks/network_speed.py [--size 256 --slices 10 --factor 4 --device cpu]
Prints the wall time of the full prediction (encoder, mixer, decoder; input slices kept) and voxels/s.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from isrnet.configuration import DEFAULT_NETWORK
from isrnet.networks import build_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--factor", type=float, default=4.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from isrnet.inference.slice_synthesis import synthesise_slices

    network = build_network(DEFAULT_NETWORK).to(args.device).eval()
    parameters = sum(p.numel() for p in network.parameters())
    volume = np.random.default_rng(0).random((args.slices, args.size, args.size)).astype(np.float32)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        output = synthesise_slices(network, volume, args.factor, thickness_ratio=1.0, device=args.device)
        times.append(time.perf_counter() - start)
    best = min(times)
    print(f"SliceSynthNet ({parameters / 1e3:.0f} k parameters), {torch.get_num_threads()} threads, {args.device}")
    print(f"{args.size}x{args.size}x{args.slices} at x{args.factor:g} -> {output.shape[0]} slices: "
          f"best {best:.2f} s of {args.repeats} (median {np.median(times):.2f} s), "
          f"{output.size / best / 1e6:.2f} M output voxels/s")


if __name__ == "__main__":
    main()
