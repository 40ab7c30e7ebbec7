"""Time series (4D images) read and written frame by frame, so that memory holds a few frames, not all of them.

A `FrameSource` is an opened 4D (or 3D: one frame) image: its `TimeAxis` (how many frames, how far apart) and its
frames as `Volume`s, read when asked for. A `FrameSink` takes output frames one by one and puts the finished image
in place atomically on `commit` (nothing under the final name before that). `reader_writer.open_frames` and
`reader_writer.open_frame_sink` choose the implementation for a path (NIfTI streams both ways; DICOM series are
read per temporal position and written per instance; other formats hold the frames in memory).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Iterator

from isrnet.imageio.volume import Volume

TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}  # NIfTI's time units, in seconds


@dataclass(frozen=True)
class TimeAxis:
    """The fourth axis of an image: its frame count, the time between frames (`step`, in `unit`) and, where the
    source says so (DICOM trigger times), each frame's time in milliseconds."""
    frames: int = 1
    step: float | None = None  # e.g. the repetition time of an fMRI run; None: the source does not say
    unit: str = "sec"  # one of TIME_UNITS
    frame_times_ms: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.unit not in TIME_UNITS:
            raise ValueError(f"time unit {self.unit!r}; use one of {', '.join(TIME_UNITS)}")
        if self.frame_times_ms is not None and len(self.frame_times_ms) != self.frames:
            raise ValueError(f"{len(self.frame_times_ms)} frame times for {self.frames} frames")

    @property
    def step_seconds(self) -> float | None:
        return None if self.step is None else self.step * TIME_UNITS[self.unit]

    def frame_time_ms(self, index: int) -> float | None:
        """When frame `index` was acquired, relative to the first, in ms (the source's times, else index x step)."""
        if self.frame_times_ms is not None:
            return self.frame_times_ms[index]
        return None if self.step_seconds is None else index * self.step_seconds * 1000.0

    def with_frames(self, frames: int) -> "TimeAxis":
        return replace(self, frames=frames, frame_times_ms=None) if frames != self.frames else self

    def as_record(self) -> dict:
        record = asdict(self)
        record["frame_times_ms"] = list(self.frame_times_ms) if self.frame_times_ms is not None else None
        return record


class FrameSource:
    """An opened image's frames, read when asked for (`frame(i)`, or iterating in order)."""
    time: TimeAxis = TimeAxis()
    name: str = ""

    def __len__(self) -> int:
        return self.time.frames

    def frame(self, index: int) -> Volume:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Volume]:
        for index in range(len(self)):
            yield self.frame(index)

    def close(self) -> None:
        """Release open files (a no-op where nothing stays open)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FramesInMemory(FrameSource):
    """Frames already read (a 3D image, or formats that cannot be read a frame at a time)."""

    def __init__(self, volumes: list[Volume], time: TimeAxis | None = None, name: str = "") -> None:
        self.volumes = volumes
        self.time = (time or TimeAxis()).with_frames(len(volumes))
        self.name = name

    def frame(self, index: int) -> Volume:
        return self.volumes[index]


class FrameSink:
    """Output frames written as they come; `commit` puts the finished image under its final name, `abort` (or an
    exception inside `with`) leaves nothing there."""

    def write(self, volume: Volume) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()
