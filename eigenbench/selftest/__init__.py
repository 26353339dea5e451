"""`eigenbench selftest`: the harness times workloads of known duration and reports its own error.

CPU (`cpu`): the overhead of one timed empty call, and busy-waits of 1 ms and 10 ms run through
the real sampler. CUDA (`cuda`): the overhead of an event pair, `torch.cuda._sleep` kernels whose
cycle rate is calibrated against the host wall clock (not against CUDA events, the thing under
test), and the host-blocking detector on one call known to block and one known not to. The cost
of a stable 10 ms result is put next to what pytest-benchmark's and pyperf's defaults would spend
on it, computed from their documented defaults, not run (`peers`). Targets and their check are in
`targets`, the text in `text`, the whole run in `run`.
"""

from __future__ import annotations

from eigenbench.selftest.cpu import busy_wait, make_busy_wait
from eigenbench.selftest.cuda import calibrate_sleep_host
from eigenbench.selftest.peers import pyperf_plan, pytest_benchmark_plan, stable_comparison
from eigenbench.selftest.run import run_selftest
from eigenbench.selftest.targets import targets_met
from eigenbench.selftest.text import format_selftest

__all__ = [
    "busy_wait",
    "calibrate_sleep_host",
    "format_selftest",
    "make_busy_wait",
    "pyperf_plan",
    "pytest_benchmark_plan",
    "run_selftest",
    "stable_comparison",
    "targets_met",
]
