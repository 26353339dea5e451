"""`python -m eigenbench`: SIGINT and SIGTERM are handled before anything heavy is imported,
so an interrupt during start-up is exit 130 ("interrupted"), never swallowed."""

import contextlib
import os
import sys

from eigenbench.run import contain

try:
    contain.install_interrupts()
    if contain.signals():  # counted while the package imported
        raise KeyboardInterrupt
    from eigenbench.cli import main

    code = main()
    contain.count_interrupts()  # a signal after the command: exit 130, no traceback
except KeyboardInterrupt:
    contain.count_interrupts()
    code = 130
    print("eigenbench: interrupted", file=sys.stderr)
contain.ignore_interrupts()  # from here on the exit code stands: a late signal must not
# kill the interpreter's teardown (exit -2 or -15 after a complete run), so it is ignored
if contain.signals() and code != 130:  # an interrupt some code caught and went on from
    code = 130
    print("eigenbench: interrupted", file=sys.stderr)
if code == 130:
    # The interrupt is handled and the run file final; skip the interpreter's teardown, which
    # after a KeyboardInterrupt caught deep in a library may re-raise SIGINT (exit -2, not 130).
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(130)
sys.exit(code)
