"""What the CLI shows: a progress bar on stderr, and on stdout (rich) the answers of a run
(who is fastest and correct, per workload), its cases, and the plan and compare tables."""

from eigenbench.console.progress import Progress, plan_view
from eigenbench.console.runs import answers_tables, answers_view, percent, results_table
from eigenbench.console.verdicts import dispatch_notes, render_table

__all__ = [
    "Progress",
    "answers_tables",
    "answers_view",
    "dispatch_notes",
    "percent",
    "plan_view",
    "render_table",
    "results_table",
]
