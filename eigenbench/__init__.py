"""eigenbench: which eigen or rank implementation is fastest and still correct at your shapes.

The package imports with only torch and NumPy; SciPy, CuPy, rich and matplotlib load where used.
"""

from eigenbench.run.contain import defer_interrupts_at_start

defer_interrupts_at_start()  # `python -m eigenbench`: an early Ctrl-C or SIGTERM is exit 130
from eigenbench.results import load_run, save_run  # noqa: E402
from eigenbench.spec import Case, Impl, Suite, Validation, Workload  # noqa: E402

__all__ = ["Case", "Impl", "Suite", "Validation", "Workload", "load_run", "save_run"]
__version__ = "0.1.0"
