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

from quakestack.protocomments import COMMENTS_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"


# quakestack's own contracts, and the Open Inference Protocol (package `inference`) it also speaks.
PACKAGES = {"v1": "quakestack.v1", "oip": "the Open Inference Protocol (KServe v2 / Triton)"}


def proto_files() -> list[Path]:
    """All contract files, sorted so that generation is reproducible."""
    return sorted(p for package in PACKAGES for p in (PROTO_ROOT / "quakestack" / package).glob("*.proto"))


def include_dirs(proto_root: Path = PROTO_ROOT) -> list[str]:
    """protos/ (or a copy of it), grpc_tools' well-known types and googleapis-common-protos' google/api."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [str(proto_root), str(well_known), sysconfig.get_paths()["purelib"]]


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
    write_comments(files, out_dir / "quakestack" / "v1" / COMMENTS_FILE)
    for package, what in PACKAGES.items():
        init = out_dir / "quakestack" / package / "__init__.py"
        init.write_text(f'"""Generated protobuf and gRPC stubs of {what} (python -m quakestack.protogen)."""\n')
    return sorted(p for package in PACKAGES for p in (out_dir / "quakestack" / package).glob("*"))


# FileDescriptorProto / DescriptorProto / ServiceDescriptorProto / EnumDescriptorProto field numbers
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM, _METHOD, _VALUE = 2, 3, 4, 2, 2


def _comment_text(location) -> str:
    """A leading (else trailing) comment, its lines joined into paragraphs as written."""
    text = location.leading_comments or location.trailing_comments
    lines = [line[1:] if line.startswith(" ") else line for line in text.strip("\n").split("\n")]
    return "\n".join(lines).strip()


def _names(file_proto) -> dict[tuple[int, ...], str]:
    """Source path → full name of every message, field, enum, value, service and method of one file."""
    out: dict[tuple[int, ...], str] = {}
    pkg = file_proto.package

    def enum(path: tuple[int, ...], proto, prefix: str) -> None:
        out[path] = f"{prefix}.{proto.name}"
        for j, value in enumerate(proto.value):
            out[(*path, _VALUE, j)] = f"{prefix}.{proto.name}.{value.name}"

    def message(path: tuple[int, ...], proto, prefix: str) -> None:
        name = f"{prefix}.{proto.name}"
        out[path] = name
        for j, field in enumerate(proto.field):
            out[(*path, _FIELD, j)] = f"{name}.{field.name}"
        for j, nested in enumerate(proto.nested_type):
            message((*path, _NESTED, j), nested, name)
        for j, nested in enumerate(proto.enum_type):
            enum((*path, _NESTED_ENUM, j), nested, name)

    for i, proto in enumerate(file_proto.message_type):
        message((_MESSAGE, i), proto, pkg)
    for i, proto in enumerate(file_proto.enum_type):
        enum((_ENUM, i), proto, pkg)
    for i, service in enumerate(file_proto.service):
        out[(_SERVICE, i)] = f"{pkg}.{service.name}"
        for j, method in enumerate(service.method):
            out[(_SERVICE, i, _METHOD, j)] = f"{pkg}.{service.name}.{method.name}"
    return out


def write_comments(files: list[str], target: Path) -> None:
    """The protos' comments by full name (quakestack.v1.Msg.field ...), for the gateway's OpenAPI descriptions.

    The generated stubs carry no source info, so the comments are kept beside them as one JSON file.
    """
    import json
    import tempfile

    from google.protobuf import descriptor_pb2

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["grpc_tools.protoc", *(f"-I{d}" for d in include_dirs()), "--include_source_info",
                f"--descriptor_set_out={out}", *files]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed: " + " ".join(args))
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    comments: dict[str, str] = {}
    for file_proto in fds.file:
        names = _names(file_proto)
        for location in file_proto.source_code_info.location:
            name = names.get(tuple(location.path))
            text = _comment_text(location)
            if name and text:
                comments[name] = text
    target.write_text(json.dumps(dict(sorted(comments.items())), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT):
        print(path)
