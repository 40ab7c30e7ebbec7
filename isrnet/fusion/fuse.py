"""Several stacks of one patient -> one near-isotropic volume (what `isr_fuse` calls).

    from isrnet.fusion import FuseOptions, fuse_paths
    fuse_paths(["knee_sag.nii.gz", "knee_cor.nii.gz", "knee_ax.nii.gz"], "knee_fused.nii.gz", model)

Steps, each in its own module: super-resolve every stack with its own settings and slice profile (the
predictor, as isr_predict), register every stack rigidly to the reference stack (registration.py), resample
onto one isotropic grid (common_grid.py), bring intensities onto the reference's scale and refuse mixed
contrasts (harmonisation.py), fuse frequency by frequency (frequency_fusion.py), write the volume, a sidecar
and a QC figure (qc_figure.py). A stack that fails to register is excluded with a warning; one stack alone is
simply super-resolved.
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from isrnet import __version__
from isrnet.datasets import case_name
from isrnet.errors import IsrnetError
from isrnet.fusion.common_grid import FIELDS_OF_VIEW, common_grid, finest_in_plane_spacing, resample_onto
from isrnet.fusion.frequency_fusion import StackResponse, fuse
from isrnet.fusion.grouping import group_stacks
from isrnet.fusion.harmonisation import IntensityMap, match_intensities
from isrnet.fusion.registration import Registration, identity_at, register_rigid, volume_centre
from isrnet.imageio import Volume
from isrnet.imageio.reader_writer import open_frames
from isrnet.imageio.formats import image_ending, is_dicom_folder
from isrnet.imageio.geometry import in_plane_axes, is_near_isotropic
from isrnet.inference.model_resolution import Model, as_model
from isrnet.inference.outputs import (OutputFormat, check_not_an_input, dicom_record, write_image, write_series,
                                      write_sidecar)
from isrnet.inference.predict_files import find_inputs, part_of
from isrnet.inference.predictor import Predictor
from isrnet.utilities.device import resolve_device


@dataclass
class FuseOptions:
    target_spacing: float | None = None  # mm, isotropic; default: the finest in-plane spacing of the stacks
    field_of_view: str = "union"  # or 'reference'
    reference: int = 0  # which stack (in the order given) the others are registered to
    allow_mixed_contrast: bool = False
    device: str = "cpu"
    qc_figure: bool = True
    seed: int = 12345  # registration sampling
    num_parts: int = 1  # folder mode: split the patients into parts ...
    part_id: int = 0  # ... and do this one
    output: OutputFormat = field(default_factory=OutputFormat)  # NIfTI, or a derived DICOM series of the reference

    def __post_init__(self) -> None:
        if self.field_of_view not in FIELDS_OF_VIEW:
            raise IsrnetError(f"unknown --field-of-view '{self.field_of_view}'; use {' or '.join(FIELDS_OF_VIEW)}")


@dataclass
class Stack:
    name: str
    volume: Volume  # as read
    super_resolved: Volume
    record: dict = field(default_factory=dict)

    @property
    def slice_axis(self) -> int:
        return self.record["slice_axis"]


@dataclass
class FusionResult:
    volume: Volume
    record: dict
    on_grid: dict[str, np.ndarray] = field(default_factory=dict)  # each used stack on the grid (for the QC figure)


def super_resolve(predictor: Predictor, name: str, volume: Volume) -> Stack:
    """The stack super-resolved along its own slice axis with its own settings (as isr_predict does)."""
    settings, profile = predictor.resolve(volume, case=name)
    axis = Predictor.slice_axis(volume, settings)
    record = {"slice_axis": axis, "input_spacing": list(volume.spacing), "slice_profile": profile.as_record()}
    if is_near_isotropic(volume.spacing, axis):
        return Stack(name, volume, volume, {**record, "super_resolved": "no (already near-isotropic)"})
    result = predictor.run_resolved(volume, settings, profile)
    return Stack(name, volume, result.volume, {**record, "super_resolved": f"x{result.factor:.3g}",
                                               "output_spacing": list(result.volume.spacing)})


def _response(stack: Stack, registration: Registration, grid: Volume) -> StackResponse:
    """The stack's slice normal on the grid's axes (through its registration) and its two widths."""
    axis = stack.slice_axis
    normal_world = stack.volume.direction[:, axis]
    normal_reference = registration.rotation.T @ normal_world  # stack frame -> reference (grid) world frame
    normal = grid.direction.T @ normal_reference
    profile = stack.record["slice_profile"]
    along = max(float(profile["thickness_mm"]), stack.volume.spacing[axis])
    across = min(stack.volume.spacing[a] for a in in_plane_axes(axis))
    return StackResponse(normal / np.linalg.norm(normal), along, across)


def fuse_volumes(names: list[str], volumes: list[Volume], predictor: Predictor, options: FuseOptions | None = None,
                 log: Callable[[str], None] = print) -> FusionResult:
    """Fuse stacks of one patient in memory; see the module docstring."""
    options = options or FuseOptions()
    started = time.time()
    if not volumes:
        raise IsrnetError("no stacks to fuse")
    if not 0 <= options.reference < len(volumes):
        raise IsrnetError(f"--reference {options.reference}: there are {len(volumes)} stacks (0-based index)")
    stacks = []
    for name, volume in zip(names, volumes):
        log(f"{name}: super-resolving ({' x '.join(map(str, volume.shape))} at "
            f"{' x '.join(f'{s:g}' for s in volume.spacing)} mm)")
        stacks.append(super_resolve(predictor, name, volume))
    reference = stacks[options.reference]
    if len(stacks) == 1:
        return FusionResult(reference.super_resolved, _record(stacks, {}, {}, None, {}, started, options, predictor))
    registrations: dict[str, Registration] = {reference.name: Registration(True, identity_at(volume_centre(
        reference.super_resolved)), "reference")}
    for stack in stacks:
        if stack is reference:
            continue
        registration = register_rigid(reference.super_resolved, stack.super_resolved, options.seed)
        registrations[stack.name] = registration
        if registration.ok:
            _, angle, shift = registration.motion_in_frame(reference.volume.direction)
            log(f"{stack.name}: registered to {reference.name}: {angle:.2f} degrees, "
                f"{np.linalg.norm(shift):.2f} mm ({registration.iterations} iterations)")
        else:
            warnings.warn(f"{stack.name}: {registration.message}; excluded from the fusion", stacklevel=2)
    used = [s for s in stacks if registrations[s.name].ok]
    spacing = options.target_spacing or finest_in_plane_spacing([s.volume for s in stacks])
    grid = common_grid(reference.super_resolved, [s.super_resolved for s in used if s is not reference],
                       [registrations[s.name].transform for s in used if s is not reference], spacing,
                       options.field_of_view)
    on_grid = {s.name: resample_onto(s.super_resolved, grid, registrations[s.name].transform) for s in used}
    sigma = max(s.volume.spacing[s.slice_axis] for s in used) / spacing / 2
    maps = {reference.name: IntensityMap("identity")}
    for stack in used:
        if stack is not reference:
            maps[stack.name] = match_intensities(on_grid[reference.name], on_grid[stack.name], sigma, stack.name,
                                                 options.allow_mixed_contrast)
            on_grid[stack.name] = maps[stack.name].apply(on_grid[stack.name])
    responses = {s.name: _response(s, registrations[s.name], grid) for s in used}
    fused, fusion = fuse([on_grid[s.name] for s in used], [responses[s.name] for s in used], spacing)
    background = float(np.nanmin(reference.super_resolved.array))
    fused = np.where(np.isfinite(fused), fused, background).astype(np.float32)
    fusion["stacks"] = [s.name for s in used]
    record = _record(stacks, registrations, maps, grid, {**fusion, "responses": {k: r.as_record() for k, r in
                                                                                 responses.items()}},
                     started, options, predictor)
    return FusionResult(grid.with_array(fused), record, on_grid)


def _record(stacks: list[Stack], registrations: dict, maps: dict, grid: Volume | None, fusion: dict,
            started: float, options: FuseOptions, predictor: Predictor) -> dict:
    reference = stacks[options.reference]
    frame = reference.volume.direction
    entries = []
    for stack in stacks:
        entry = {"name": stack.name, **stack.record}
        if stack.name in registrations:
            entry["registration"] = registrations[stack.name].as_record(frame)
        if stack.name in maps:
            entry["intensity_map"] = maps[stack.name].as_record()
        entries.append(entry)
    return {"reference_stack": reference.name, "model": predictor.description, "stacks": entries,
            "grid": None if grid is None else {"shape": list(grid.shape), "spacing_mm": grid.spacing[0],
                                               "field_of_view": options.field_of_view,
                                               "origin": grid.origin.round(4).tolist(),
                                               "direction": grid.direction.round(6).tolist()},
            "fusion": fusion or {"method": "one stack: super-resolved only"},
            "motion_frame": "rotation about the reference volume's centre; vectors on the reference stack's "
                            "array axes (registration maps reference points to stack points)",
            "seconds": round(time.time() - started, 1), "isrnet_version": __version__}


def _read_stack(path: Path) -> Volume:
    with open_frames(path) as frames:
        if len(frames) != 1:
            raise IsrnetError(f"{path}: a time series of {len(frames)} frames; isr_fuse takes 3D stacks (isr_predict "
                              f"super-resolves a time series frame by frame)")
        return frames.frame(0)


def fuse_paths(stacks: list[str | Path], output: str | Path, model: Model | str | Path | None = None,
               options: FuseOptions | None = None, log: Callable[[str], None] = print) -> Path:
    """Fuse stack files / DICOM series folders into `output` (a NIfTI/NRRD/MHA file) plus `<output>.json` and
    `<name>_qc.png`; returns the output path."""
    options = options or FuseOptions()
    output = Path(output)
    paths = [Path(p) for p in stacks]
    for path in paths:
        if not path.exists():
            raise IsrnetError(f"-i {path}: no such file or folder")
        if path.is_dir() and not is_dicom_folder(path):
            raise IsrnetError(f"-i {path}: a folder of stacks goes alone (isr_fuse -i FOLDER -o OUT_FOLDER)")
    check_not_an_input(output, paths)
    if not 0 <= options.reference < len(paths):
        raise IsrnetError(f"--reference {options.reference}: there are {len(paths)} stacks (0-based index)")
    identity_source = options.output.identity_source(paths[options.reference])
    if identity_source is None and image_ending(output) is None:
        raise IsrnetError(f"-o {output}: give a file name ending in .nii.gz, .nii, .nrrd or .mha "
                          f"(or -i FOLDER -o OUT_FOLDER to fuse per patient)")
    if len({case_name(p) for p in paths}) != len(paths):
        raise IsrnetError("two stacks have the same name; rename one (names identify stacks in the sidecar)")
    predictor = Predictor.from_model(as_model(model), resolve_device(options.device))
    result = fuse_volumes([case_name(p) for p in paths], [_read_stack(p) for p in paths], predictor, options, log)
    result.record["inputs"] = [str(p) for p in paths]
    if identity_source is not None:
        _write_dicom(result, output, identity_source, paths, options)
    else:
        write_image([result.volume], output)
    if options.qc_figure and result.on_grid:
        from isrnet.fusion.qc_figure import fusion_figure
        figure = output.parent / f"{output.name[: len(output.name) - len(image_ending(output) or '')]}_qc.png"
        fusion_figure(result, figure)
        result.record["qc_figure"] = figure.name
    write_sidecar(result.record, output)
    log(f"isr_fuse: {len(result.record['fusion'].get('stacks', [paths[0]]))} of {len(paths)} stack(s) fused into "
        f"{output} ({result.record['seconds']:.0f} s)")
    return output


def _write_dicom(result: FusionResult, output: Path, identity_source: Path, inputs: list[Path],
                 options: FuseOptions) -> None:
    """The fused volume as a derived series of the reference stack's patient and study (one instance per plane
    across the reference's slice axis: the grid has the reference's orientation)."""
    axis = next(s for s in result.record["stacks"] if s["name"] == result.record["reference_stack"])["slice_axis"]
    count = len(result.record["fusion"].get("stacks", [inputs[0]]))
    write_series(result.volume, output, identity_source, inputs, axis, f"isrnet fused {count} stacks",
                 f"isrnet {__version__} fusion of {count} super-resolved stacks (model: {result.record['model']})",
                 options.output, keep_frame_of_reference=inputs[options.reference].is_dir())
    result.record["dicom"] = dicom_record(identity_source, options.output)


def fuse_folder(folder: str | Path, output_folder: str | Path, model: Model | str | Path | None = None,
                options: FuseOptions | None = None, log: Callable[[str], None] = print) -> dict[str, str | None]:
    """Fuse per patient (see grouping.py) into `output_folder/<patient>.nii.gz`; returns patient -> error or None.
    A patient that fails is reported and the others still run; with num_parts a patient never spans two parts."""
    options = options or FuseOptions()
    folder, output_folder = Path(folder), Path(output_folder)
    check_not_an_input(output_folder, [folder], replaced=False)
    patients = part_of(group_stacks(folder, find_inputs(folder)), options.num_parts, options.part_id)
    model = as_model(model)
    log(f"isr_fuse: {len(patients)} patient(s) -> {output_folder}")
    output_folder.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, str | None] = {}
    for patient in patients:
        try:
            dicom = options.output.identity_source(patient.stacks[options.reference if options.reference <
                                                                     len(patient.stacks) else 0]) is not None
            target = output_folder / (patient.name if dicom else f"{patient.name}.nii.gz")
            fuse_paths(patient.stacks, target, model, options, log)
            outcome[patient.name] = None
        except IsrnetError as error:
            outcome[patient.name] = str(error)
            print(f"{patient.name}: error: {error}", file=sys.stderr)
    failed = sum(e is not None for e in outcome.values())
    log(f"isr_fuse: {len(outcome) - failed} of {len(outcome)} patient(s) written to {output_folder}"
        + (f", {failed} failed" if failed else ""))
    return outcome
