"""The `quakestack` command line: `app` parses and runs each command on a worker thread (so Ctrl-C never
lands inside gRPC); `data`, `train`, `models`, `infer` hold the commands, `common` and `progress` what they
share, `demo` the end-to-end demo built from those same commands."""

from quakestack.cli.app import entry, main

__all__ = ["entry", "main"]
