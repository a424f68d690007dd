"""The protos: stubs are fresh, REST annotations are present, naming follows Buf style."""

from __future__ import annotations

import filecmp
from pathlib import Path

from google.api import annotations_pb2

from quakestack.oip import open_inference_pb2
from quakestack.protogen import PACKAGES, generate
from quakestack.v1 import common_pb2, data_pb2, inference_pb2, trainer_pb2

REPO_ROOT = Path(__file__).resolve().parent.parent
FILES = (common_pb2, data_pb2, trainer_pb2, inference_pb2, open_inference_pb2)


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
