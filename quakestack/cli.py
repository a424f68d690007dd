"""The `quakestack` command: run the stack, the demo, and inspect configuration."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from quakestack.config import ConfigError, Settings, load_settings, settings_table_markdown


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"quakestack: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


def _print_endpoints(stack) -> None:
    ep = stack.endpoints()
    print(f"  object storage  {ep.s3}" + ("  (embedded SeaweedFS)" if stack.seaweed else ""))
    for name, addr in ep.grpc.items():
        print(f"  {name:<15} grpc {addr}   metrics {ep.metrics[name]}")
    print(f"  gateway         {ep.gateway}")
    print(f"  logs            {stack.log_dir}")


def cmd_up(args: argparse.Namespace) -> int:
    """Start everything, wait for Ctrl-C or SIGTERM, stop everything."""
    from quakestack.stack import Stack

    settings = _settings()
    if args.storage_dir:
        settings = settings.replace(storage_dir=str(Path(args.storage_dir).resolve()))
    stack = Stack(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("quakestack: starting ...", flush=True)
    try:
        stack.start()
        print("quakestack is up:")
        _print_endpoints(stack)
        print("Ctrl-C stops everything.", flush=True)
        while not stop.wait(1.0):
            for name, proc in list(stack.processes.items()):
                if proc.poll() is not None:
                    print(f"quakestack: {name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                    stop.set()
    finally:
        codes = stack.stop()
        print("quakestack: stopped " + ", ".join(f"{n} ({c})" for n, c in codes.items()), flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from quakestack.demo import run_demo

    settings = _settings()
    return run_demo(settings, Path(args.workdir).resolve())


def cmd_config(_args: argparse.Namespace) -> int:
    print(settings_table_markdown())
    return 0


def cmd_protos(_args: argparse.Namespace) -> int:
    from quakestack.protogen import generate

    for path in generate():
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quakestack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the embedded stack until Ctrl-C")
    up.add_argument("--storage-dir", help="embedded S3 data directory (default QUAKESTACK_STORAGE_DIR)")
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser("demo", help="run the end-to-end demo on a fresh embedded stack")
    demo.add_argument("--workdir", default="out/demo", help="where the demo writes its files and plots")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("config", help="print the QUAKESTACK_* settings as a markdown table").set_defaults(
        func=cmd_config)
    sub.add_parser("protos", help="regenerate the gRPC stubs from protos/").set_defaults(func=cmd_protos)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
