import sys

from eigenbench.cli import main

sys.exit(main())
