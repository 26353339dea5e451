"""`python -m eigenbench`: SIGINT and SIGTERM are handled before anything heavy is imported,
so an interrupt during start-up is exit 130 ("interrupted"), never swallowed."""

import sys

from eigenbench.run import contain

try:
    contain.install_interrupts()
    from eigenbench.cli import main

    code = main()
except KeyboardInterrupt:
    code = 130
    print("eigenbench: interrupted", file=sys.stderr)
if contain.signals() and code != 130:  # an interrupt some code caught and went on from
    code = 130
    print("eigenbench: interrupted", file=sys.stderr)
sys.exit(code)
