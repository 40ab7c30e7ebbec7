"""isrnet: self-configuring inter-slice super-resolution of MR images."""

__version__ = "0.1.0"
