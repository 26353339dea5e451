"""eigenbench: which eigen or rank implementation is fastest and still correct at your shapes.

The package imports with only torch and NumPy; SciPy, CuPy, rich and matplotlib load where used.
"""

from eigenbench.results import load_run, save_run
from eigenbench.spec import Case, Impl, Suite, Validation, Workload

__all__ = ["Case", "Impl", "Suite", "Validation", "Workload", "load_run", "save_run"]
__version__ = "0.1.0"
