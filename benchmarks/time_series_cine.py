"""A cine-like time series through `isr_predict`: is every frame super-resolved as well as a 3D volume, and is the
motion between frames kept?

Material: a real high-resolution MR volume shipped in a package (--source, default deepmriprep's brain template at
1 mm, which no training stage has seen; see sources.py), sampled on a 1.6 mm isotropic grid (the slice axis is the
superior-inferior one, 104 mm of it). Each of --frames frames (one period, 40 ms apart) deforms it smoothly, the way
a beating heart and breathing move a cine stack:
  contraction  a radial pull towards a centre near the lateral ventricles, Gaussian-windowed (sigma --radius-mm, so
               a region of about twice that across), up to --contraction-mm at its peak (mid-period), in 3D: tissue
               moves across the slices
  torsion      a twist about the slice axis in the same window, up to --torsion-deg at the centre
  breathing    the whole field of view shifted along the slice axis, --breathing-mm x sin(phase)
Frame 0 is undeformed. Every frame and the static volume (the undeformed frame) are sampled from the same
prefiltered 1 mm volume (cubic spline), so they share one interpolation blur.
Acquisition: isrnet's slice-profile simulation, 8 mm thick slices (--profile, FWHM 8 mm) every 8 mm, 14 slices.
Written under --out: the 4D input as one NIfTI (time step 40 ms, unit msec), each frame as a 3D NIfTI, the static
volume's acquisition, the 1.6 mm references (4D and static). Predicted with `predict_paths` (what `isr_predict`
runs; output every 1.6 mm, x5): the 4D file, the folder of 3D frames, the static volume, and the 3D frames again
told the thickness the 4D file was predicted with (a 4D file's thickness is decided once, from its first frame; a 3D
file's from itself: this pass separates that from the prediction itself). Baseline: cubic B-spline
on the same grid. Score: PSNR over the synthesised slices inside each reference frame's brain mask (as
isr_benchmark), gain = isrnet - cubic; temporal: the RMS error of the output's frame-to-frame change
(out[t+1] - out[t]) against the reference's, over the voxels of either frame's mask on synthesised slices.
Usage: python benchmarks/time_series_cine.py [--frames 24] [--out FOLDER] [--weights CHECKPOINT]
       (a few minutes at the defaults on 2 CPU cores; the timing is printed at the end)
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dataset_conversion/ lives beside isrnet/

from dataset_conversion.acquisition import simulate_acquisition  # noqa: E402
from isrnet.imageio import Volume, read_volume, read_volumes, write_volume  # noqa: E402
from sources import HR_SOURCES, high_resolution  # noqa: E402

VOXEL_MM = 1.6  # the reference grid, isotropic; 8 mm / 1.6 mm = x5 exactly, so no resampling at scoring
SLICE_MM = 8.0
STEP = round(SLICE_MM / VOXEL_MM)
THICK_SLICES = 14
TIME_STEP_MS = 40.0
ANTI_ALIAS_SIGMA = 0.5  # 1 mm voxels, before sampling at 1.6 mm
PARTS = ("input_4d", "input_frames", "input_static", "reference", "isrnet_4d", "isrnet_frames", "isrnet_static",
         "isrnet_frames_4d_thickness")


@dataclass(frozen=True)
class Motion:
    """The smooth time-varying deformation of the cine-like series (all lengths in mm)."""
    contraction_mm: float = 4.0
    radius_mm: float = 18.0
    torsion_deg: float = 6.0
    breathing_mm: float = 3.0

    def at(self, frame: int, frames: int) -> tuple[float, float, float]:
        """(peak radial displacement mm, torsion degrees, through-plane shift mm) of `frame`."""
        phase = 2.0 * math.pi * frame / frames
        beat = 0.5 * (1.0 - math.cos(phase))
        return self.contraction_mm * beat, self.torsion_deg * beat, self.breathing_mm * math.sin(phase)


def source_volume(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The source at 1 mm (SI axis first), anti-aliased and spline-prefiltered, and the centre of the moving
    region in 1 mm voxels (the middle of the brain's bounding box: the lateral ventricles in a brain)."""
    from isrnet.intensity import bounding_box, foreground_mask
    array = ndimage.gaussian_filter(high_resolution(name).astype(np.float64), ANTI_ALIAS_SIGMA)
    box = bounding_box(foreground_mask(array))
    centre = np.array([(a + b - 1) / 2.0 for a, b in box])
    return ndimage.spline_filter(array, order=3), centre


def frame_grid(source_shape: tuple[int, ...], centre: np.ndarray) -> np.ndarray:
    """1 mm source coordinates [3, Z, Y, X] of the 1.6 mm reference grid: STEP x (THICK_SLICES - 1) + 1 slices
    centred on `centre` along the slice axis, the whole source in-plane."""
    counts = [STEP * (THICK_SLICES - 1) + 1] + [int((n - 1) // VOXEL_MM) + 1 for n in source_shape[1:]]
    middles = [centre[0]] + [(n - 1) / 2.0 for n in source_shape[1:]]
    axes = [middle + VOXEL_MM * (np.arange(count) - (count - 1) / 2.0) for middle, count in zip(middles, counts)]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def deformed(prefiltered: np.ndarray, grid: np.ndarray, centre: np.ndarray, motion: Motion, frame: int,
             frames: int) -> np.ndarray:
    """One frame: the source sampled at the grid pulled back through the frame's contraction, torsion and shift."""
    peak_mm, torsion_deg, shift_mm = motion.at(frame, frames)
    offset = grid - centre[:, None, None, None]  # mm, since the source is at 1 mm
    window = np.exp(-0.5 * (offset ** 2).sum(axis=0) / motion.radius_mm ** 2)
    # x = y + k (y - c) w: sampling farther out pulls tissue towards the centre; peak |k r w| = k sigma e^-1/2
    pull = peak_mm / (motion.radius_mm * math.exp(-0.5))
    points = grid + pull * offset * window
    angle = math.radians(torsion_deg) * window
    cos, sin = np.cos(angle), np.sin(angle)
    rotated_y = centre[1] + cos * (points[1] - centre[1]) - sin * (points[2] - centre[2])
    rotated_x = centre[2] + sin * (points[1] - centre[1]) + cos * (points[2] - centre[2])
    points = np.stack([points[0] - shift_mm, rotated_y, rotated_x])
    values = ndimage.map_coordinates(prefiltered, points, order=3, mode="nearest", prefilter=False)
    return np.clip(values, 0.0, None).astype(np.float32)


def acquired(frame: np.ndarray, profile: str) -> tuple[Volume, Volume]:
    """(8 mm thick-slice acquisition, 1.6 mm reference) of one frame, with matching geometry."""
    reference = Volume(frame, (VOXEL_MM,) * 3)
    return simulate_acquisition(reference, 0, STEP, float(STEP), profile), reference


def write_inputs(out: Path, lows: list[Volume], references: list[Volume], static: tuple[Volume, Volume]) -> None:
    """The 4D input (40 ms apart, msec), each frame as a 3D file, the static volume, the references."""
    from isrnet.imageio.reader_writer import open_frame_sink
    from isrnet.imageio.time_series import TimeAxis
    time_axis = TimeAxis(len(lows), TIME_STEP_MS, "msec")
    for name, volumes in (("input_4d/cine_lr.nii.gz", lows), ("reference/cine_hr.nii.gz", references)):
        with open_frame_sink(out / name, time_axis) as sink:
            for volume in volumes:
                sink.write(volume)
    for index, low in enumerate(lows):
        write_volume(low, out / "input_frames" / f"cine_lr_t{index:02d}.nii.gz", "float32")
    write_volume(static[0], out / "input_static" / "static_lr.nii.gz", "float32")
    write_volume(static[1], out / "reference" / "static_hr.nii.gz", "float32")


def predict(out: Path, model, thickness_mm: float | None) -> dict[str, float]:
    """`predict_paths` on the 4D file, the folder of 3D frames and the static file, then the 3D frames again told
    the thickness the 4D file was predicted with (so only the frames' own thickness estimates differ); seconds of
    each."""
    from isrnet.inference import PredictOptions, predict_paths
    from isrnet.inference.predictor import PredictionSettings
    seconds = {}
    for name, source in (("isrnet_4d", out / "input_4d" / "cine_lr.nii.gz"), ("isrnet_frames", out / "input_frames"),
                         ("isrnet_static", out / "input_static" / "static_lr.nii.gz"),
                         ("isrnet_frames_4d_thickness", out / "input_frames")):
        told = sidecar_thickness(out / "isrnet_4d" / "cine_lr.nii.gz") if name.endswith("4d_thickness") \
            else thickness_mm
        start = time.perf_counter()
        results = predict_paths(source, out / name, model, PredictOptions(settings=PredictionSettings(thickness_mm=told)))
        seconds[name] = time.perf_counter() - start
        failed = [r for r in results if r.failed]
        if failed:
            sys.exit(f"prediction failed: {failed[0].source.name}: {failed[0].message}")
    return seconds


def sidecar_thickness(output: Path) -> float:
    from isrnet.inference.outputs import sidecar_of
    return float(json.loads(sidecar_of(output).read_text())["slice_profile"]["thickness_mm"])


def time_header(path: Path) -> str:
    """The 4D file's frame count, time step and unit as nibabel reads its header."""
    import nibabel
    header = nibabel.load(str(path)).header
    return f"{header['dim'][4]} frames, pixdim[4] {float(header['pixdim'][4]):g} {header.get_xyzt_units()[1]}"


def scored(output: Volume, reference: Volume, low: Volume) -> tuple[float, np.ndarray, np.ndarray]:
    """(PSNR over synthesised slices in the mask, the output on the reference grid, that scoring mask): what
    `evaluation.metrics.compare` returns as psnr_synth (isr_benchmark's score), without its SSIM."""
    from isrnet.evaluation.metrics import data_range_of, on_reference_grid, psnr, synthesised_slices
    from isrnet.imageio.geometry import input_slice_positions
    from isrnet.intensity import foreground_mask
    values = on_reference_grid(output, reference)
    truth = reference.array.astype(np.float32)
    head = foreground_mask(truth, high_percentile=99.9) & np.isfinite(values)
    synthetic = synthesised_slices(reference, 0, input_slice_positions(low, 0))[:, None, None]
    mask = head & synthetic
    return psnr(values, truth, mask, data_range_of(truth[head])), values, mask


def change_error(outputs: list[np.ndarray], references: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    """Per consecutive pair: RMS of (out[t+1] - out[t]) - (ref[t+1] - ref[t]) over either frame's scoring mask."""
    errors = []
    for t in range(len(outputs) - 1):
        mask = (masks[t] | masks[t + 1]) & np.isfinite(outputs[t]) & np.isfinite(outputs[t + 1])
        change = (outputs[t + 1] - outputs[t]) - (references[t + 1] - references[t])
        errors.append(float(np.sqrt(np.mean(change[mask].astype(np.float64) ** 2))))
    return np.array(errors)


def evaluate(out: Path, lows: list[Volume], references: list[Volume], static: tuple[Volume, Volume],
             motion: Motion) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The per-frame table, the per-pair temporal table and the arrays the figure shows."""
    from isrnet.evaluation.baselines import classic_upsample
    outputs_4d = read_volumes(out / "isrnet_4d" / "cine_lr.nii.gz")
    if len(outputs_4d) != len(lows):
        sys.exit(f"the 4D output holds {len(outputs_4d)} frames, the input {len(lows)}")
    static_output = read_volume(out / "isrnet_static" / "static_lr.nii.gz")
    static_cubic = classic_upsample(static[0], STEP, 0, "cubic B-spline")
    static_gain = scored(static_output, static[1], static[0])[0] - scored(static_cubic, static[1], static[0])[0]
    thickness_4d = sidecar_thickness(out / "isrnet_4d" / "cine_lr.nii.gz")
    rows, arrays = [], {"cubic": [], "isrnet_4d": [], "isrnet_3d": [], "reference": [], "mask": []}
    for t, (low, reference) in enumerate(zip(lows, references)):
        frame_file = out / "isrnet_frames" / f"cine_lr_t{t:02d}.nii.gz"
        output_3d = read_volume(frame_file)
        output_told = read_volume(out / "isrnet_frames_4d_thickness" / frame_file.name)
        cubic_psnr, cubic_values, mask = scored(classic_upsample(low, STEP, 0, "cubic B-spline"), reference, low)
        psnr_4d, values_4d, _ = scored(outputs_4d[t], reference, low)
        psnr_3d, values_3d, _ = scored(output_3d, reference, low)
        psnr_told = scored(output_told, reference, low)[0]
        peak_mm, torsion_deg, shift_mm = motion.at(t, len(lows))
        rows.append({"frame": t, "time_ms": t * TIME_STEP_MS, "contraction_mm": peak_mm, "torsion_deg": torsion_deg,
                     "shift_mm": shift_mm, "cubic": cubic_psnr, "isrnet_4d": psnr_4d, "gain_4d": psnr_4d - cubic_psnr,
                     "gain_3d_file": psnr_3d - cubic_psnr, "gain_4d_minus_3d": psnr_4d - psnr_3d,
                     "max_abs_4d_minus_3d": float(np.abs(outputs_4d[t].array - output_3d.array).max()),
                     "gain_4d_minus_3d_same_thickness": psnr_4d - psnr_told,
                     "max_abs_4d_minus_3d_same_thickness": float(np.abs(outputs_4d[t].array - output_told.array).max()),
                     "gain_static": static_gain, "gain_4d_minus_static": psnr_4d - cubic_psnr - static_gain,
                     "gain_3d_file_minus_static": psnr_3d - cubic_psnr - static_gain,
                     "thickness_4d_mm": thickness_4d, "thickness_3d_mm": sidecar_thickness(frame_file)})
        for key, value in (("cubic", cubic_values), ("isrnet_4d", values_4d), ("isrnet_3d", values_3d),
                           ("reference", reference.array), ("mask", mask)):
            arrays[key].append(value)
    temporal = pd.DataFrame({"pair": [f"{t}-{t + 1}" for t in range(len(lows) - 1)],
                             **{f"rms_{key}": change_error(arrays[key], arrays["reference"], arrays["mask"])
                                for key in ("cubic", "isrnet_4d", "isrnet_3d")}})
    temporal["isrnet_4d_over_cubic"] = temporal.rms_isrnet_4d / temporal.rms_cubic
    arrays["low"] = lows
    arrays["static_gain"] = static_gain
    return pd.DataFrame(rows), temporal, arrays


def summaries(table: pd.DataFrame, temporal: pd.DataFrame) -> pd.DataFrame:
    """Mean, worst, best and spread of the per-frame columns, and the temporal errors."""
    rows = []
    for column, worst in (("gain_4d", "min"), ("gain_3d_file", "min"), ("gain_4d_minus_static", "absmax"),
                          ("gain_3d_file_minus_static", "absmax"), ("gain_4d_minus_3d", "absmax"),
                          ("gain_4d_minus_3d_same_thickness", "absmax"), ("max_abs_4d_minus_3d_same_thickness", "max"),
                          ("max_abs_4d_minus_3d", "max"),
                          ("thickness_3d_mm", "min")):
        values = table[column]
        worst_value = values.abs().max() if worst == "absmax" else getattr(values, worst)()
        best = values.max() if worst == "min" else values.abs().min() if worst == "absmax" else values.min()
        rows.append({"quantity": column, "mean": values.mean(), "worst": worst_value, "best": best,
                     "spread": values.std(ddof=0)})
    for column in ("rms_cubic", "rms_isrnet_4d", "rms_isrnet_3d", "isrnet_4d_over_cubic"):
        values = temporal[column]
        rows.append({"quantity": f"temporal {column}", "mean": values.mean(), "worst": values.max(),
                     "best": values.min(), "spread": values.std(ddof=0)})
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    cells = [[f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    return header + "\n".join("| " + " | ".join(row) + " |" for row in cells) + "\n"


def figure(table: pd.DataFrame, temporal: pd.DataFrame, arrays: dict, shown: int, path: Path) -> None:
    """Gain per frame (4D, 3D files, static), the change error per pair, and one frame across the slices."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from isrnet.utilities.files import save_figure
    reference = arrays["reference"][shown]
    row = arrays["centre_row"]  # the coronal plane through the centre of the moving region
    low = np.repeat(arrays["low"][shown].array[:, row], STEP, axis=0)[: reference.shape[0]]
    views = {"input (8 mm, nearest)": low, "cubic B-spline": arrays["cubic"][shown][:, row],
             "isrnet (4D file)": arrays["isrnet_4d"][shown][:, row], "reference (1.6 mm)": reference[:, row]}
    fig = plt.figure(figsize=(14, 6.0))
    grid = fig.add_gridspec(2, 5, height_ratios=[1, 1.1])
    gains = fig.add_subplot(grid[0, :3])
    gains.plot(table.frame, table.gain_4d, "o-", label="frame of the 4D file")
    gains.plot(table.frame, table.gain_3d_file, "x--", label="frame as a 3D file")
    gains.axhline(arrays["static_gain"], color="k", lw=1, label="static 3D volume")
    gains.fill_between(table.frame, arrays["static_gain"] - 0.1, arrays["static_gain"] + 0.1, color="k", alpha=0.1,
                       label="static +- 0.1 dB")
    gains.set(xlabel=f"frame ({TIME_STEP_MS:g} ms apart)", ylabel="gain over cubic (dB)", title="gain per frame")
    gains.legend(fontsize=7, loc="lower right")
    change = fig.add_subplot(grid[0, 3:])
    pairs = np.arange(len(temporal))
    change.plot(pairs, temporal.rms_cubic, "s-", label="cubic B-spline")
    change.plot(pairs, temporal.rms_isrnet_4d, "o-", label="isrnet (4D file)")
    change.set(xlabel="frame pair t, t+1", ylabel="RMS error of the change", title="error of the frame-to-frame change")
    change.legend(fontsize=8)
    top = np.percentile(reference[arrays["mask"][shown]], 99.5)
    for index, (title, image) in enumerate(views.items()):
        axis = fig.add_subplot(grid[1, index])
        axis.imshow(image[::-1], cmap="gray", vmin=0, vmax=top, aspect=1.0)
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    motion = (reference - arrays["reference"][0])[:, row]
    limit = float(np.abs(motion).max()) or 1.0
    axis = fig.add_subplot(grid[1, 4])
    axis.imshow(motion[::-1], cmap="RdBu_r", vmin=-limit, vmax=limit, aspect=1.0)
    axis.set_title(f"reference: frame {shown} - frame 0", fontsize=10)
    axis.axis("off")
    fig.suptitle(f"cine-like series, frame {shown} of {len(table)} across the slices (coronal); "
                 f"gain {table.gain_4d[shown]:+.2f} dB")
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="frames in one period (default 24)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "isrnet_benchmarks" / "time_series_cine",
                        help="folder for the files, table and figure (default: %(default)s)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="checkpoint to predict with (default: the shipped isrnet/pretrained/mrft.pth)")
    parser.add_argument("--source", choices=list(HR_SOURCES), default="deepmriprep",
                        help="high-resolution source (sources.py; default deepmriprep)")
    parser.add_argument("--profile", choices=("gaussian", "rect"), default="gaussian",
                        help="slice profile of the simulated 8 mm slices (default gaussian)")
    parser.add_argument("--slice-thickness", type=float, default=None,
                        help="tell the predictor the thickness (mm); default: estimated from each input, as "
                             "isr_predict does")
    parser.add_argument("--contraction-mm", type=float, default=Motion.contraction_mm,
                        help="peak radial displacement of the contraction (default %(default)s)")
    parser.add_argument("--radius-mm", type=float, default=Motion.radius_mm,
                        help="sigma of the contraction's and torsion's Gaussian window (default %(default)s)")
    parser.add_argument("--torsion-deg", type=float, default=Motion.torsion_deg,
                        help="peak twist about the slice axis at the centre (default %(default)s)")
    parser.add_argument("--breathing-mm", type=float, default=Motion.breathing_mm,
                        help="amplitude of the through-plane shift (default %(default)s)")
    args = parser.parse_args()
    if args.frames < 2:
        parser.error("--frames needs at least 2")
    from isrnet.inference.model_resolution import Model, as_model
    from isrnet.pretrained import describe_shipped, shipped_weights
    model = as_model(args.weights) if args.weights else Model(shipped_weights("mrft"), None, describe_shipped("mrft"))
    motion = Motion(args.contraction_mm, args.radius_mm, args.torsion_deg, args.breathing_mm)
    started = time.perf_counter()
    out = args.out
    for part in PARTS:  # only what this script writes
        shutil.rmtree(out / part, ignore_errors=True)

    prefiltered, centre = source_volume(args.source)
    grid = frame_grid(prefiltered.shape, centre)
    frames = [deformed(prefiltered, grid, centre, motion, t, args.frames) for t in range(args.frames)]
    pairs = [acquired(frame, args.profile) for frame in frames]
    lows, references = [p[0] for p in pairs], [p[1] for p in pairs]
    static = acquired(deformed(prefiltered, grid, centre, Motion(0.0, motion.radius_mm, 0.0, 0.0), 0, 1), args.profile)
    write_inputs(out, lows, references, static)
    simulated = time.perf_counter() - started
    print(f"simulated {args.frames} frames of {references[0].shape} at {VOXEL_MM} mm -> {lows[0].shape} "
          f"({SLICE_MM:g} mm {args.profile} slices every {SLICE_MM:g} mm) from {args.source} "
          f"({HR_SOURCES[args.source].role}) in {simulated:.1f} s; 4D input: {time_header(out / 'input_4d' / 'cine_lr.nii.gz')}",
          flush=True)

    seconds = predict(out, model, args.slice_thickness)
    output_time = time_header(out / "isrnet_4d" / "cine_lr.nii.gz")
    print(f"4D output: {output_time}", flush=True)
    start = time.perf_counter()
    table, temporal, arrays = evaluate(out, lows, references, static, motion)
    arrays["centre_row"] = int(np.argmin(np.abs(grid[1, 0, :, 0] - centre[1])))
    scoring = time.perf_counter() - start
    summary = summaries(table, temporal)
    shown = int(table.contraction_mm.idxmax())
    figure(table, temporal, arrays, shown, out / "time_series_cine.png")
    table.to_csv(out / "time_series_cine.csv", index=False, float_format="%.4f")
    temporal.to_csv(out / "time_series_cine_temporal.csv", index=False, float_format="%.4f")

    within = int((table.gain_4d_minus_static.abs() <= 0.1).sum())
    within_3d = int((table.gain_3d_file_minus_static.abs() <= 0.1).sum())
    better = int((temporal.rms_isrnet_4d <= temporal.rms_cubic).sum())
    total = time.perf_counter() - started
    verdict = (f"frames whose gain is within 0.1 dB of the static volume's ({arrays['static_gain']:+.2f} dB): "
               f"{within}/{len(table)} (frames as 3D files: {within_3d}/{len(table)}); largest |4D - 3D file| gain difference "
               f"{table.gain_4d_minus_3d.abs().max():.4f} dB (told the 4D file's thickness "
               f"{table.thickness_4d_mm[0]:.2f} mm: {table.gain_4d_minus_3d_same_thickness.abs().max():.4f} dB, voxels "
               f"differ by at most {table.max_abs_4d_minus_3d_same_thickness.max():.2g}); error of the frame-to-frame change, isrnet / cubic: "
               f"{temporal.rms_isrnet_4d.mean():.4f} / {temporal.rms_cubic.mean():.4f} (mean over pairs; isrnet <= "
               f"cubic on {better}/{len(temporal)} pairs)")
    timing = (f"seconds: simulate + write {simulated:.1f}, predict 4D {seconds['isrnet_4d']:.1f}, 3D frames "
              f"{seconds['isrnet_frames']:.1f} (again at the 4D thickness {seconds['isrnet_frames_4d_thickness']:.1f}), static "
              f"{seconds['isrnet_static']:.1f}, score {scoring:.1f}, "
              f"total {total:.1f}")
    shown_columns = ["frame", "contraction_mm", "shift_mm", "cubic", "isrnet_4d", "gain_4d", "gain_3d_file",
                     "gain_4d_minus_3d", "gain_4d_minus_3d_same_thickness", "gain_static", "gain_4d_minus_static",
                     "thickness_3d_mm"]
    report = (f"# Cine-like series: {args.frames} frames, {SLICE_MM:g} mm {args.profile} slices, model "
              f"{model.description}\n\n{markdown(table[shown_columns])}\n{markdown(summary, 3)}\n"
              f"{markdown(temporal, 4)}\n{verdict}\n\n4D output header: {output_time}\n\n{timing}\n")
    (out / "time_series_cine.md").write_text(report)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table[shown_columns].to_string(index=False, float_format="{:.2f}".format))
        print(summary.to_string(index=False, float_format="{:.3f}".format))
        print(temporal.to_string(index=False, float_format="{:.4f}".format))
    print(verdict)
    print(timing)
    print(f"table: {out / 'time_series_cine.csv'}, {out / 'time_series_cine.md'}; figure: {out / 'time_series_cine.png'}")


if __name__ == "__main__":
    main()
