"""python -m quakestack.cli: the same as the `quakestack` console script."""

from quakestack.cli import entry

if __name__ == "__main__":
    entry()
