"""How a thick-slice acquisition is made (simulation) and what it was, read off a volume (estimation).

- `simulation`: the one slice-profile simulation, shared by dataset conversion, `mrft`, `ssft`, benchmarks, tests.
- `estimation`: the through-plane profile (family and FWHM) estimated from the volume itself.
- `noise`: the acquisition's noise level (from the background) and simulated slices topped up to it.
- `slice_profile`: which profile a case gets (header, dataset.json or estimate) and why.
"""
from isrnet.acquisition.simulation import (ACQUISITION_PROFILES, FWHM_TO_SIGMA, PROFILES, profile_radius,
                                           profile_weights, sample_thick, simulate_thick_slices,
                                           thick_slice_positions)

__all__ = ["ACQUISITION_PROFILES", "FWHM_TO_SIGMA", "PROFILES", "profile_radius", "profile_weights", "sample_thick",
           "simulate_thick_slices", "thick_slice_positions"]
