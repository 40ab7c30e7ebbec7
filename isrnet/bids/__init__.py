"""isrnet over a BIDS study (`isr_bids`): the scans found with pybids, their sidecars' slice thickness used,
BIDS derivatives written.

Entry points: `run_participant(bids_dir, output_dir, BidsOptions(...))`, `run_group(output_dir)`;
`Selection` chooses the scans.
"""
from isrnet.utilities.lazy_exports import lazy_exports

_HOMES = {"run_participant": "app", "run_group": "app", "BidsOptions": "app", "ScanOutcome": "app",
          "GroupSummary": "app", "Selection": "layout", "find_scans": "layout", "BidsScan": "layout"}
__all__ = list(_HOMES)
__getattr__ = lazy_exports(__name__, _HOMES)
