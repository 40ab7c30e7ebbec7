"""Image input/output and geometry: the only place that touches spacing, origin and direction."""
from isrnet.imageio.reader_writer import read_volume, read_volumes, write_volume, write_volumes
from isrnet.imageio.volume import Volume

__all__ = ["Volume", "read_volume", "read_volumes", "write_volume", "write_volumes"]
