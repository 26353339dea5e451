"""What the dispatch fingerprints cost a run: `eigenbench run ARGS…` in this process with
the profiled calls timed (issue 19's closing note).

    python tools/dispatch_overhead.py all --quick --device cpu --out /tmp/run.json
"""

from __future__ import annotations

import sys
import time
from typing import Any

import eigenbench.run.runner as runner_module
from eigenbench.cli import main as eigenbench_main


def main(argv: list[str]) -> int:
    probe = runner_module.probe_dispatch
    spent: list[float] = []

    def timed(fn: Any, device: str) -> Any:
        start = time.perf_counter()
        try:
            return probe(fn, device)
        finally:
            spent.append(time.perf_counter() - start)

    runner_module.probe_dispatch = timed  # type: ignore[assignment]
    start = time.perf_counter()
    code = eigenbench_main(["run", *argv])
    wall = time.perf_counter() - start
    total = sum(spent)
    print(
        f"exit {code}; run {wall:.1f} s; {len(spent)} profiled calls {total:.2f} s "
        f"({100 * total / wall:.1f} %), largest {max(spent, default=0):.2f} s, "
        f"first {spent[0] if spent else 0:.3f} s",
        file=sys.stderr,
    )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
