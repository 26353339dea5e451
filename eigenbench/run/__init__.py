"""Running cases: options, records, the case loop, `--isolate` children, time estimates.

Import the modules themselves (`eigenbench.run.runner`, `…options`, `…isolate`): this package
imports nothing, so the isolate parent never loads the runner.
"""
