"""Run files: the versioned schema (`schema`), loading, saving and listing them (`files`).

The names below are what the rest of eigenbench imports from `eigenbench.results`.
"""

from __future__ import annotations

from eigenbench.results.files import (
    dumps_run,
    json_line,
    latest_run,
    list_runs,
    load_run,
    save_run,
    write_atomic,
)
from eigenbench.results.schema import (
    RECORD_SCHEMA,
    RUN_SCHEMA,
    SCHEMA_ID,
    STATUSES,
    Record,
    new_run_id,
    validate_run,
)

__all__ = [
    "RECORD_SCHEMA",
    "RUN_SCHEMA",
    "SCHEMA_ID",
    "STATUSES",
    "Record",
    "dumps_run",
    "json_line",
    "latest_run",
    "list_runs",
    "load_run",
    "new_run_id",
    "save_run",
    "validate_run",
    "write_atomic",
]
