"""How a thick-slice acquisition is made (simulation) and what it was, read off a volume (estimation).

- `simulation`: the one slice-profile simulation, shared by dataset conversion, `mrft`, `ssft`, benchmarks, tests.
- `estimation`: the through-plane profile (family and FWHM) estimated from the volume itself.
- `noise`: the acquisition's noise level (from the background) and simulated slices topped up to it.
- `mr_physics`: what a real acquisition adds: k-space truncation, partial Fourier, complex noise on the acquired
  slices, interleave steps, the slice profile of an RF pulse.
- `slice_profile`: `SliceProfile`, the one record of a case's slice profile, and which profile a case gets
  (dataset.json, header or estimate) and why.
"""
from isrnet.acquisition.simulation import (ACQUISITION_PROFILES, FWHM_TO_SIGMA, PROFILES, profile_radius,
                                           profile_weights, sample_thick, simulate_thick_slices,
                                           thick_slice_positions)

__all__ = ["ACQUISITION_PROFILES", "FWHM_TO_SIGMA", "PROFILES", "profile_radius", "profile_weights", "sample_thick",
           "simulate_thick_slices", "thick_slice_positions"]
