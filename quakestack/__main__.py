"""python -m quakestack: the same as the `quakestack` console script."""

import sys

from quakestack.cli import main

if __name__ == "__main__":
    sys.exit(main())
