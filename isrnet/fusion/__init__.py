"""Fusion: several stacks of one patient (different orientations) -> one near-isotropic volume (`isr_fuse`).

Entry points: `fuse_paths(stacks, output_file, model, FuseOptions(...))`, `fuse_folder(folder, output_folder,
...)` (per patient), `fuse_volumes(names, volumes, predictor, options)` (in memory).
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"fuse_paths": "fuse", "fuse_folder": "fuse", "fuse_volumes": "fuse", "FuseOptions": "fuse",
          "FusionResult": "fuse", "group_stacks": "grouping", "register_rigid": "registration"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
