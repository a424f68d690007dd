"""The one allow-listed local path check (data sources, AnnotateFile, local SDS archives), on a real file system."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quakestack.errors import InvalidArgument, NotFound, PermissionDenied
from quakestack.paths import allowed_local_path


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "day").mkdir(parents=True)
    outside.mkdir()
    (allowed / "day" / "a.mseed").write_bytes(b"x")
    (outside / "secret").write_bytes(b"s")
    os.symlink(outside / "secret", allowed / "link")
    return {"allowed": allowed, "outside": outside, "tmp": tmp_path}


def test_files_and_directories_under_the_allow_list(tree) -> None:
    allowed = tree["allowed"]
    day_file = allowed / "day" / "a.mseed"
    assert allowed_local_path(str(day_file), [str(allowed)], kind="file") == day_file
    assert allowed_local_path(str(allowed / "day"), [allowed], kind="dir") == allowed / "day"
    assert allowed_local_path(str(allowed), [str(allowed)]) == allowed  # the allowed directory itself


@pytest.mark.parametrize("make, error, fragment", [
    (lambda t: "relative/a.mseed", InvalidArgument, "must be absolute"),
    (lambda t: "", InvalidArgument, "must be absolute"),
    (lambda t: str(t["outside"] / "secret"), PermissionDenied, "is outside QUAKESTACK_DATA_ALLOWED_DIRS"),
    (lambda t: str(t["allowed"] / ".." / "outside" / "secret"), PermissionDenied, "is outside"),
    (lambda t: str(t["allowed"] / "link"), PermissionDenied, "is outside"),  # a symlink out is refused
    (lambda t: str(t["tmp"] / "allowed-not"), PermissionDenied, "is outside"),  # a prefix is not a parent
    (lambda t: str(t["allowed"] / "day" / "missing.mseed"), NotFound, "no file or directory"),
])
def test_refusals_name_the_path_and_the_setting(tree, make, error, fragment) -> None:
    with pytest.raises(error) as raised:
        allowed_local_path(make(tree), [str(tree["allowed"])], "sources[0].waveforms.local_path")
    assert fragment in str(raised.value) and str(raised.value).startswith("sources[0].waveforms.local_path")


def test_kind_and_an_empty_allow_list(tree) -> None:
    allowed = tree["allowed"]
    with pytest.raises(NotFound, match="no file"):
        allowed_local_path(str(allowed / "day"), [allowed], kind="file")
    with pytest.raises(NotFound, match="no directory"):
        allowed_local_path(str(allowed / "day" / "a.mseed"), [allowed], kind="dir")
    with pytest.raises(PermissionDenied, match="local paths are disabled"):
        allowed_local_path(str(allowed / "day"), [])
