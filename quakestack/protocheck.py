"""Lint the protos with Buf and check them for breaking changes against the committed baseline.

buf reads a descriptor set ("image") that grpc_tools' protoc builds with its imports, so the
google/api annotations resolve from googleapis-common-protos as they do for the stubs (no module
dependency to download); `--path quakestack` keeps the lint and the comparison to our own files.
The buf CLI is the npm package @bufbuild/buf, pinned by tools/buf/package-lock.json and installed
by `scripts/setup.sh --dev` into tools/buf/node_modules/.

    python3 -m quakestack.protocheck lint        # buf lint with buf.yaml
    python3 -m quakestack.protocheck breaking    # buf breaking against protos/baseline/quakestack-v1.binpb
    python3 -m quakestack.protocheck baseline    # refresh the baseline (at a release)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

from quakestack.protogen import PACKAGES, PROTO_ROOT, REPO_ROOT, include_dirs

BUF_CONFIG = REPO_ROOT / "buf.yaml"
BASELINE = PROTO_ROOT / "baseline" / "quakestack-v1.binpb"
BUF = REPO_ROOT / "tools" / "buf" / "node_modules" / ".bin" / "buf"


def buf_binary() -> Path:
    """The buf CLI that the dev set-up installed; a clear message when it has not run."""
    if not BUF.exists():
        raise FileNotFoundError(f"{BUF} is missing: run `scripts/setup.sh --dev` (npm ci --prefix tools/buf)")
    return BUF


def build_image(out: Path, proto_root: Path = PROTO_ROOT, *, source_info: bool = True) -> Path:
    """A descriptor set of every contract under proto_root with its imports (what buf reads)."""
    files = sorted(str(p.relative_to(proto_root))
                   for package in PACKAGES for p in (proto_root / "quakestack" / package).glob("*.proto"))
    args = ["grpc_tools.protoc", *(f"-I{d}" for d in include_dirs(proto_root)), "--include_imports",
            *(["--include_source_info"] if source_info else []), f"--descriptor_set_out={out}", *files]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    return out


def _buf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(buf_binary()), *args, "--path", "quakestack", "--config", str(BUF_CONFIG)],
                          capture_output=True, text=True, timeout=120, check=False)


def lint(proto_root: Path = PROTO_ROOT) -> subprocess.CompletedProcess:
    """`buf lint` of the contracts under proto_root; returncode 0 when clean, findings on stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        return _buf("lint", str(build_image(Path(tmp) / "image.binpb", proto_root)))


def breaking(proto_root: Path = PROTO_ROOT, against: Path = BASELINE) -> subprocess.CompletedProcess:
    """`buf breaking` of the contracts under proto_root against a baseline image; 0 when compatible."""
    with tempfile.TemporaryDirectory() as tmp:
        image = build_image(Path(tmp) / "image.binpb", proto_root)
        return _buf("breaking", str(image), "--against", str(against))


def write_baseline(target: Path = BASELINE) -> Path:
    """The contracts as released: the image later trees must stay compatible with (no source info)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return build_image(target, source_info=False)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "lint"
    if command == "baseline":
        print(write_baseline())
        return 0
    if command not in ("lint", "breaking"):
        print("usage: python3 -m quakestack.protocheck [lint|breaking|baseline]", file=sys.stderr)
        return 2
    result = lint() if command == "lint" else breaking()
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
