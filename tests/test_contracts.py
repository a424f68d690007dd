"""The protos: stubs are fresh, REST annotations are present, `buf lint` is clean, `buf breaking` passes."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from google.api import annotations_pb2

from quakestack import protocheck
from quakestack.oip import open_inference_pb2
from quakestack.protogen import PACKAGES, PROTO_ROOT, generate
from quakestack.v1 import catalog_pb2, common_pb2, data_pb2, inference_pb2, trainer_pb2

REPO_ROOT = Path(__file__).resolve().parent.parent
FILES = (common_pb2, data_pb2, trainer_pb2, inference_pb2, open_inference_pb2, catalog_pb2)


def services():
    for module in FILES:
        yield from module.DESCRIPTOR.services_by_name.values()


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    generate(tmp_path)
    for package in PACKAGES:
        fresh = tmp_path / "quakestack" / package
        committed = REPO_ROOT / "quakestack" / package
        names = sorted(p.name for p in fresh.iterdir() if p.is_file())
        generated = {".py", ".pyi", ".json"}
        assert names == sorted(p.name for p in committed.iterdir() if p.is_file() and p.suffix in generated)
        _, mismatch, errors = filecmp.cmpfiles(fresh, committed, names, shallow=False)
        assert not mismatch and not errors, f"stale stubs {mismatch or errors}: run `quakestack protos`"


def test_every_non_bidi_rpc_has_an_http_annotation() -> None:
    missing = []
    for service in services():
        for method in service.methods:
            if method.client_streaming and method.server_streaming:
                continue  # bidirectional streams have no REST form
            if not method.GetOptions().HasExtension(annotations_pb2.http):
                missing.append(method.full_name)
    assert not missing


def test_buf_style_request_response_names() -> None:
    for service in services():
        for method in service.methods:
            assert method.input_type.name == f"{method.name}Request", method.full_name
            assert method.output_type.name == f"{method.name}Response", method.full_name


def test_enums_start_with_unspecified() -> None:
    for module in FILES:
        enums = list(module.DESCRIPTOR.enum_types_by_name.values())
        for message in module.DESCRIPTOR.message_types_by_name.values():
            enums += list(message.enum_types)
        for enum in enums:
            first = enum.values_by_number[0].name
            assert first.endswith("_UNSPECIFIED"), enum.full_name


def test_contracts_cover_every_capability() -> None:
    names = {m.full_name.split(".")[-1] for s in services() for m in s.methods}
    expected = {
        "UploadFile", "CreateDataset", "WatchDatasetJob", "ListDatasets", "DescribeDataset", "DeleteDataset",
        "CreateTrainingJob", "GetTrainingJob", "ListTrainingJobs", "UpdateTrainingJob", "StopTrainingJob",
        "CancelTrainingJob", "ResumeTrainingJob", "StreamTrainingProgress", "ListCheckpoints", "EvaluateModel",
        "RegisterModel", "ListModels", "GetModelVersion", "SetModelAlias", "LoadModel", "UnloadModel",
        "ListLoadedModels", "Predict", "Annotate", "AnnotateFile", "SubmitFeedback",
    }
    assert expected <= names


def test_waveforms_travel_as_raw_bytes() -> None:
    fields = common_pb2.Waveforms.DESCRIPTOR.fields_by_name
    assert fields["data"].type == fields["data"].TYPE_BYTES
    assert {"shape", "sampling_rate_hz", "component_order", "start_times"} <= set(fields)


# --- Buf: lint (buf.yaml) and breaking changes against the committed baseline -----------------------

def _proto_copy(tmp_path: Path) -> Path:
    """A copy of protos/ to break on purpose."""
    root = tmp_path / "protos"
    shutil.copytree(PROTO_ROOT / "quakestack", root / "quakestack")
    return root


def test_buf_lint_is_clean() -> None:
    result = protocheck.lint()
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_catches_a_violation(tmp_path: Path) -> None:
    root = _proto_copy(tmp_path)
    trainer = root / "quakestack" / "v1" / "trainer.proto"
    trainer.write_text(trainer.read_text().replace("service ModelRegistryService {", "service ModelRegistry {"))
    result = protocheck.lint(root)
    assert result.returncode != 0
    assert 'Service name "ModelRegistry" should be suffixed with "Service"' in result.stdout


def test_buf_breaking_passes_against_the_baseline() -> None:
    assert protocheck.BASELINE.exists(), "run `python3 -m quakestack.protocheck baseline` at a release"
    result = protocheck.breaking()
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_catches_a_changed_field_number(tmp_path: Path) -> None:
    root = _proto_copy(tmp_path)
    data = root / "quakestack" / "v1" / "data.proto"
    text = data.read_text()
    assert text.count("  Location waveforms = 2;") == 1
    data.write_text(text.replace("  Location waveforms = 2;", "  Location waveforms = 12;"))
    result = protocheck.breaking(root)
    assert result.returncode != 0
    assert '"waveforms"' in result.stdout, result.stdout


def test_buf_breaking_catches_a_deleted_field(tmp_path: Path) -> None:
    root = _proto_copy(tmp_path)
    common = root / "quakestack" / "v1" / "common.proto"
    text = common.read_text()
    line = next(line for line in text.splitlines() if "sampling_rate_hz =" in line)
    common.write_text(text.replace(line + "\n", ""))
    result = protocheck.breaking(root)
    assert result.returncode != 0
    assert "sampling_rate_hz" in result.stdout, result.stdout
