"""`Volume`: a 3D array that carries its geometry, so geometry cannot be dropped by accident.

Geometry is stored per *array axis* (not in ITK's reversed order): `spacing[k]` is the voxel size along
array axis k, column k of `direction` is the world (LPS) unit vector of array axis k, and `origin` is the
world position of voxel (0, 0, 0). World position of index i: origin + direction @ (spacing * i).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    dicom_thickness_mm: float | None = None  # the slice thickness the source records (DICOM SliceThickness)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if self.array.ndim != 3:
            raise ValueError(f"Volume needs a 3D array, got shape {self.array.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    def index_to_world(self, index: np.ndarray | Sequence[float]) -> np.ndarray:
        """World (LPS, mm) coordinates of continuous indices; `index` has shape (..., 3)."""
        index = np.asarray(index, dtype=np.float64)
        return self.origin + (index * np.asarray(self.spacing)) @ self.direction.T

    def with_array(self, array: np.ndarray) -> "Volume":
        """Same geometry, new voxel values (shape must match)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} does not match {self.array.shape}")
        return replace(self, array=array)

    def transposed(self, order: Sequence[int]) -> "Volume":
        """Permute array axes; geometry follows so every voxel keeps its world position."""
        order = [int(o) for o in order]
        return Volume(np.transpose(self.array, order), tuple(self.spacing[o] for o in order),
                      self.origin.copy(), self.direction[:, order].copy(), self.dicom_thickness_mm)
