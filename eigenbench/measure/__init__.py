"""Timing, warm-up and adaptive stopping, memory and host-blocking probes."""

from eigenbench.measure.clocks import Clock, CudaEventClock, PerfCounterClock, clock_for
from eigenbench.measure.loop import Measurement, MeasureOptions, measure

__all__ = [
    "Clock",
    "CudaEventClock",
    "MeasureOptions",
    "Measurement",
    "PerfCounterClock",
    "clock_for",
    "measure",
]
