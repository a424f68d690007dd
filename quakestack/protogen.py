"""Generate the Python stubs of protos/ into quakestack/v1 with one command.

The stubs are committed so that an install needs no protoc step; tests regenerate them into a
temporary directory and fail when the committed ones are stale.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"


# quakestack's own contracts, and the Open Inference Protocol (package `inference`) it also speaks.
PACKAGES = {"v1": "quakestack.v1", "oip": "the Open Inference Protocol (KServe v2 / Triton)"}


def proto_files() -> list[Path]:
    """All contract files, sorted so that generation is reproducible."""
    return sorted(p for package in PACKAGES for p in (PROTO_ROOT / "quakestack" / package).glob("*.proto"))


def include_dirs() -> list[str]:
    """protos/, grpc_tools' well-known types and googleapis-common-protos' google/api."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [str(PROTO_ROOT), str(well_known), sysconfig.get_paths()["purelib"]]


def generate(out_dir: Path = REPO_ROOT) -> list[Path]:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto under out_dir/quakestack/<package>."""
    out_dir = Path(out_dir)
    for package in PACKAGES:
        (out_dir / "quakestack" / package).mkdir(parents=True, exist_ok=True)
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = ["grpc_tools.protoc", *(f"-I{d}" for d in include_dirs())]
    args += [f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *files]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    for package, what in PACKAGES.items():
        init = out_dir / "quakestack" / package / "__init__.py"
        init.write_text(f'"""Generated protobuf and gRPC stubs of {what} (python -m quakestack.protogen)."""\n')
    return sorted(p for package in PACKAGES for p in (out_dir / "quakestack" / package).glob("*"))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT):
        print(path)
