"""The regression gate: run(s) in, verdicts and an exit code out.

- `verdicts`: the vocabulary every judge shares (labels, `Verdict`, `CompareResult`, the label
  rule `decide`, what counts as a regression, the exit code).
- `matching`: two runs' records matched by case id, and the labels that need no statistics.
- `noise`: the pure statistics of the noise model.
- `compare`: a run against a stored baseline (`compare_runs`).
- `paired`: an A/B pair judged round by round (`paired_compare`).
- `recheck`: a slowdown measured a second time before it counts (`judge_again`).
- `baseline`: baseline files per machine and suite, with their history.
- `ab`: two setups driven alternately in worker processes (`run_ab`).

Nothing is imported here, so importing one module of the gate never loads the others.
"""
