"""The `quakestack` command: run the stack and the demo; talk to the services (data, train, models, predict,
annotate, catalog) over gRPC at the addresses of QUAKESTACK_*_ADDR or --data/--trainer/--inference."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from quakestack.cli import archive as cli_archive
from quakestack.cli import catalog as cli_catalog
from quakestack.cli import data as cli_data
from quakestack.cli import experiments as cli_experiments
from quakestack.cli import infer as cli_infer
from quakestack.cli import models as cli_models
from quakestack.cli import sweep as cli_sweep
from quakestack.cli import train as cli_train
from quakestack.cli.common import INTERRUPTED, Ctx, errors_to_exit
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
        print(shutdown_line(codes), flush=True)
    return 0 if all(c == 0 for c in codes.values()) else 1


def shutdown_line(codes: dict[str, int | None]) -> str:
    """`stopped cleanly: ...` when every process exited 0; otherwise what each unclean one did."""
    if all(c == 0 for c in codes.values()):
        return "quakestack: stopped cleanly (" + ", ".join(codes) + ")"

    def how(code: int | None) -> str:
        if code is None or code == 0:
            return "exited cleanly"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    return "quakestack: stopped; " + ", ".join(f"{n} {how(c)}" for n, c in codes.items())


def cmd_demo(args: argparse.Namespace) -> int:
    from quakestack.cli.demo import run_demo

    settings = _settings()
    return run_demo(settings, Path(args.workdir).resolve(), quick=args.quick)


def cmd_config(_args: argparse.Namespace) -> int:
    print(settings_table_markdown())
    return 0


def cmd_protos(_args: argparse.Namespace) -> int:
    from quakestack.protogen import generate

    for path in generate():
        print(path)
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    from quakestack.certs import make_dev_certs, settings_hint

    names = tuple(n.strip() for n in args.names.split(",") if n.strip())
    paths = make_dev_certs(Path(args.out), names)
    print(f"development CA and certificates written to {Path(args.out).resolve()}; settings:")
    print(settings_hint(paths))
    return 0


def common_options() -> argparse.ArgumentParser:
    """Options every service command takes (after its name): output format and service addresses."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output (JSON, or JSON lines)")
    common.add_argument("--data", help="DataService address (default QUAKESTACK_DATA_ADDR)")
    common.add_argument("--trainer", help="TrainerService address (default QUAKESTACK_TRAINER_ADDR)")
    common.add_argument("--inference", help="InferenceService address (default QUAKESTACK_INFERENCE_ADDR)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quakestack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = common_options()
    for module in (cli_data, cli_train, cli_sweep, cli_models, cli_infer, cli_catalog, cli_archive, cli_experiments):
        module.add_parser(sub, common)
    up = sub.add_parser("up", help="start the embedded stack until Ctrl-C")
    up.add_argument("--storage-dir", help="embedded S3 data directory (default QUAKESTACK_STORAGE_DIR)")
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser("demo", help="run the end-to-end demo on a fresh embedded stack")
    demo.add_argument("--workdir", default="out/demo", help="where the demo writes its files and plots")
    demo.add_argument("--quick", action="store_true", help="smaller data and fewer epochs (tests)")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("config", help="print the QUAKESTACK_* settings as a markdown table").set_defaults(
        func=cmd_config)
    sub.add_parser("protos", help="regenerate the gRPC stubs from protos/").set_defaults(func=cmd_protos)
    certs = sub.add_parser("certs", help="make a local development CA with server and client certificates")
    certs.add_argument("--out", default="certs", help="directory for the PEM files")
    certs.add_argument("--names", default="localhost,127.0.0.1,::1",
                       help="comma-separated DNS names / IPs of the server certificate")
    certs.set_defaults(func=cmd_certs)
    return parser


def run_service_command(args: argparse.Namespace) -> int:
    """Commands that talk to the services: a Ctx from settings and flags; gRPC errors exit 1 with one line.

    The command runs in a worker thread and the main thread only waits, so that Ctrl-C lands in the wait and
    never inside gRPC's own code: a KeyboardInterrupt raised mid-call left a channel that `close()` waited on
    forever. On Ctrl-C the channels are closed, which cancels the calls in flight (the jobs they started keep
    running on the server), and the command ends with 130 at once.
    """
    settings = _settings()
    addrs = {f"{name}_addr": getattr(args, name) for name in ("data", "trainer", "inference") if getattr(args, name)}
    ctx = Ctx(settings.replace(**addrs), as_json=args.json)
    outcome = _Outcome()
    worker = threading.Thread(target=_command_worker, args=(ctx, args, outcome), name="quakestack-command",
                              daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        ctx.interrupt()
        return INTERRUPTED
    if outcome.error is not None:  # a bug or a broken pipe: raised here as if the command ran on this thread
        raise outcome.error
    return outcome.code


@dataclass
class _Outcome:
    """What the command thread hands back: its exit code, or the exception it did not handle."""

    code: int = 1
    error: BaseException | None = None


def _command_worker(ctx: Ctx, args: argparse.Namespace, outcome: _Outcome) -> None:
    try:
        with errors_to_exit(ctx) as result:
            try:
                rc = args.func(ctx, args)
                result[0] = rc if isinstance(rc, int) else 0
            finally:
                ctx.close()
        outcome.code = result[0]
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
        outcome.error = exc


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (`quakestack config | head`): end quietly, as coreutils do."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
    return 141  # 128 + SIGPIPE, the shell's code for a writer whose pipe closed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "json"):
            return run_service_command(args)
        return args.func(args)
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:  # outside a service command (config, protos): nothing runs on
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def entry() -> None:
    """The console script and `python -m quakestack`: after Ctrl-C, leave at once (os._exit) rather than
    finalize the interpreter under a command thread that may be writing a progress bar."""
    import os

    code = main()
    if code == INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)
