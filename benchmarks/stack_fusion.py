"""isr_fuse on simulated stacks: does fusing three orthogonal stacks beat the best single super-resolved stack?

Quality (--parts quality): each --sources volume at 1 mm (default deepmriprep's brain template, which mrft never saw;
see sources.py) acquired three times,
axial, coronal and sagittal, Gaussian 4 mm slices every 4 mm (x4); the coronal stack is taken after the head
moved by a rigid 2 degrees / 1.5 mm about the axial (reference) stack's centre; coronal and sagittal are stored
with their slice axis last, as DICOM series are. The fusion uses only what a user has (headers, estimated
profiles). Printed: PSNR over the head of each super-resolved stack (each against the reference in its own
frame), of a plain average of the registered stacks and of isr_fuse, and the motion recovered vs the truth.
Speed (--parts speed): three 256 x 256 x 40 stacks (0.625 x 0.625 x 4 mm, the template resampled) through
fuse_paths, reading and writing included.
Usage: python benchmarks/stack_fusion.py [--parts quality speed] [--out DIR]     (about 4 minutes on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/

from isrnet.acquisition import simulate_thick_slices  # noqa: E402
from isrnet.imageio import Volume, write_volume  # noqa: E402
from sources import add_sources_argument, high_resolution, spread_summary  # noqa: E402

STEP = 4.0
ORIGIN = np.array([-80.0, -100.0, -70.0])
MOTION_ROTATION_VECTOR_DEG = 2.0 * np.array([0.6, -0.48, 0.64])  # |.| = 2 degrees
MOTION_TRANSLATION_MM = 1.5 * np.array([0.48, 0.6, -0.64])  # |.| = 1.5 mm


def thick_stack(fine: Volume, axis: int, step: float = STEP) -> Volume:
    """Gaussian FWHM = step slices every `step` voxels of `fine` along `axis`; slice 0 at fine slice 0."""
    keep = int((fine.shape[axis] - 1) // step * step) + 1
    array = np.take(fine.array, np.arange(keep), axis=axis)
    low = simulate_thick_slices(array, axis, step, step, "gaussian")[0]
    spacing = list(fine.spacing)
    spacing[axis] *= step
    return Volume(low.astype(np.float32), tuple(spacing), fine.origin, fine.direction)


def moved(fine: Volume, rotation: np.ndarray, translation: np.ndarray, centre: np.ndarray) -> Volume:
    """The anatomy moved by p -> R (p - c) + c + t (identity direction, isotropic 1 mm)."""
    inverse = rotation.T
    offset = inverse @ (fine.origin - centre - translation) + centre - fine.origin
    array = ndimage.affine_transform(fine.array, inverse, offset, order=3, mode="constant").clip(0)
    return fine.with_array(array.astype(np.float32))


def slice_axis_last(volume: Volume, axis: int) -> Volume:
    order = [a for a in range(3) if a != axis] + [axis]
    return volume.transposed(order)


def quality(out: Path, source: str = "deepmriprep") -> pd.DataFrame:
    from isrnet.evaluation.metrics import compare
    from isrnet.fusion import FuseOptions, fuse_volumes
    from isrnet.fusion.registration import volume_centre
    from isrnet.inference import Predictor
    from isrnet.inference.model_resolution import shipped_model
    fine = Volume(high_resolution(source), (1.0, 1.0, 1.0), ORIGIN, np.eye(3))
    axial = thick_stack(fine, 0)
    centre = volume_centre(axial)
    rotation = Rotation.from_rotvec(np.radians(MOTION_ROTATION_VECTOR_DEG)).as_matrix()
    fine_moved = moved(fine, rotation, MOTION_TRANSLATION_MM, centre)
    stacks = {"axial": axial, "coronal": slice_axis_last(thick_stack(fine_moved, 1), 1),
              "sagittal": slice_axis_last(thick_stack(fine, 2), 2)}
    truth_frame = {"axial": fine, "coronal": fine_moved, "sagittal": fine}
    for name, stack in stacks.items():
        write_volume(stack, out / "stacks" / f"{name}.nii.gz")
    write_volume(fine, out / "reference.nii.gz")
    predictor = Predictor.from_model(shipped_model())
    started = time.time()
    result = fuse_volumes(list(stacks), list(stacks.values()), predictor, FuseOptions())
    seconds = time.time() - started
    write_volume(result.volume, out / "fused.nii.gz")
    rows = []
    from isrnet.fusion.fuse import super_resolve
    for name, stack in stacks.items():
        single = super_resolve(predictor, name, stack).super_resolved
        rows.append({"volume": f"{name} super-resolved", "psnr_head": compare(single, truth_frame[name])["psnr_all"]})
    grid = result.volume
    stacked = np.stack(list(result.on_grid.values()))
    covered = np.isfinite(stacked).sum(axis=0)
    average = (np.nansum(stacked, axis=0) / np.maximum(covered, 1)).astype(np.float32)  # 0 where none covers
    rows.append({"volume": "plain average (registered)", "psnr_head": compare(grid.with_array(average), fine)["psnr_all"]})
    rows.append({"volume": "isr_fuse", "psnr_head": compare(grid, fine)["psnr_all"]})
    table = pd.DataFrame(rows)
    table.insert(0, "source", source)
    best = table[table.volume.str.endswith("super-resolved")].psnr_head.max()
    table["vs_best_single"] = table.psnr_head - best
    print(table.to_string(index=False, float_format="{:+.2f}".format))
    coronal = next(s for s in result.record["stacks"] if s["name"] == "coronal")["registration"]
    found = Rotation.from_rotvec(np.radians(coronal["rotation_vector_deg"]))
    error_deg = np.degrees((found.inv() * Rotation.from_matrix(rotation)).magnitude())
    error_mm = float(np.linalg.norm(np.asarray(coronal["translation_mm"]) - MOTION_TRANSLATION_MM))
    print(f"motion of the coronal stack: true {np.linalg.norm(MOTION_ROTATION_VECTOR_DEG):.2f} deg / "
          f"{np.linalg.norm(MOTION_TRANSLATION_MM):.2f} mm; recovered {coronal['rotation_deg']:.2f} deg / "
          f"{coronal['translation_norm_mm']:.2f} mm; error {error_deg:.3f} deg, {error_mm:.3f} mm "
          f"(target <= 0.3 / 0.3)")
    sagittal = next(s for s in result.record["stacks"] if s["name"] == "sagittal")["registration"]
    print(f"sagittal (not moved): recovered {sagittal['rotation_deg']:.3f} deg / {sagittal['translation_norm_mm']:.3f} mm")
    print(f"fusion of three stacks in memory: {seconds:.0f} s")
    return table


def speed(out: Path) -> None:
    from isrnet.fusion import FuseOptions, fuse_paths
    from isrnet.imageio import read_volume
    from dataset_conversion.demo_brain import SOURCE
    from dataset_conversion.packaged_data import packaged_file
    template = read_volume(packaged_file(*SOURCE))  # 0.5 mm
    zoom = [s / 0.625 for s in template.spacing]
    array = ndimage.zoom(template.array.astype(np.float32), zoom, order=1)
    size = 272  # 40 thick slices of 6.4 voxels need a little more than 256
    cube = np.zeros((size,) * 3, np.float32)
    start = [(size - min(n, size)) // 2 for n in array.shape]
    cut = [slice(max((n - size) // 2, 0), max((n - size) // 2, 0) + min(n, size)) for n in array.shape]
    cube[tuple(slice(s, s + min(n, size)) for s, n in zip(start, array.shape))] = array[tuple(cut)]
    fine = Volume(cube, (0.625,) * 3, ORIGIN, np.eye(3))
    step = STEP / 0.625
    paths = []
    for name, axis in (("axial", 0), ("coronal", 1), ("sagittal", 2)):
        stack = slice_axis_last(thick_stack(fine, axis, step), axis)
        stack = Volume(stack.array[8:264, 8:264, :40], stack.spacing,
                       stack.index_to_world((8, 8, 0)), stack.direction)
        assert stack.shape == (256, 256, 40), stack.shape
        paths.append(write_volume(stack, out / "speed" / f"{name}.nii.gz"))
    started = time.time()
    fuse_paths(paths, out / "speed" / "fused.nii.gz", None, FuseOptions(qc_figure=True))
    print(f"speed: three 256 x 256 x 40 stacks (0.625 x 0.625 x 4 mm) fused in {time.time() - started:.0f} s "
          f"(target < 120 s), reading, super-resolution, registration, fusion and writing included")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=("quality", "speed"), default=["quality", "speed"])
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/stack_fusion"))
    add_sources_argument(parser)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if "quality" in args.parts:
        tables = []
        for source in args.sources:
            print(f"== source {source}", flush=True)
            tables.append(quality(args.out / source, source))
        table = pd.concat(tables, ignore_index=True)
        fused = table[table.volume == "isr_fuse"]
        if len(tables) > 1:
            print("\nisr_fuse over the best single super-resolved stack (dB) per source:")
            print(spread_summary(fused, "source", "vs_best_single"))
    if "speed" in args.parts:
        speed(args.out)


if __name__ == "__main__":
    main()
