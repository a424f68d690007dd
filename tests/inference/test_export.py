"""Export for Triton / KServe: every zoo architecture through `quakestack models export` (ExportModel on
the real stack); onnxruntime on the exported graph answers what Predict answers, and config.pbtxt parses
with tritonclient's own model-config protobuf (in .venv-triton, tritonclient needs protobuf<7)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import torch

from quakestack.cli import main
from quakestack.models.zoo import build_model, get_architecture
from quakestack.oip import open_inference_pb2 as oip_pb2
from quakestack.oip import open_inference_pb2_grpc as oip_grpc
from quakestack.v1 import common_pb2, inference_pb2
from tests.inference.helpers import register, rpc_code, windows_pb
from tests.models.test_zoo_architectures import TINY_HPARAMS

REPO_ROOT = Path(__file__).resolve().parents[2]
TRITON_PYTHON = REPO_ROOT / ".venv-triton" / "bin" / "python"
PARSE_CONFIG = """
import json, sys
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
config = text_format.Parse(open(sys.argv[1]).read(), model_config_pb2.ModelConfig())
print(json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True)))
"""


@pytest.fixture(autouse=True)
def _no_quakestack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("QUAKESTACK_")]:
        monkeypatch.delenv(key)


def _predict(inference, name: str, x: np.ndarray, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    request = inference_pb2.PredictRequest(model=name, windows=windows_pb(x), extra_inputs=[
        common_pb2.ExtraInput(name=k, values=v.tolist()) for k, v in extras.items()])
    out: dict[str, list] = {}
    for p in inference.Predict(request, timeout=60).predictions:
        for field, value in p.ListFields():
            out.setdefault(field.name, []).append(list(value) if field.name == "class_probabilities" else value)
    return {k: np.asarray(v) for k, v in out.items()}


def _infer_sequence(channel, name: str, x: np.ndarray) -> np.ndarray:
    """A picker's per-sample probabilities, which Predict does not carry: ModelInfer of the same service."""
    request = oip_pb2.ModelInferRequest(model_name=name, inputs=[oip_pb2.ModelInferRequest.InferInputTensor(
        name="waveforms", datatype="FP32", shape=list(x.shape))], raw_input_contents=[x.tobytes()])
    reply = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    index = [o.name for o in reply.outputs].index("sequence")
    shape = list(reply.outputs[index].shape)
    return np.frombuffer(reply.raw_output_contents[index], dtype="<f4").reshape(shape)


# SeisBench architectures register as seisbench:<Class> versions, which export with SeisBench's save
# (tests/trainer/test_seisbench_finetune.py), not as ONNX
@pytest.mark.parametrize("architecture", sorted(a for a in TINY_HPARAMS if not a.startswith("seisbench_")))
def test_exported_model_answers_like_predict(architecture, stack, registry, inference, inference_channel, tmp_path,
                                            capsys) -> None:
    name = f"exp-{architecture.replace('_', '-')}"
    hparams = TINY_HPARAMS[architecture]
    torch.manual_seed(11)
    model = build_model(architecture, hparams)[0].eval()
    card, _ = register(registry, name, architecture, hparams, normalization="std", model=model)
    inference.LoadModel(inference_pb2.LoadModelRequest(name=name), timeout=60)
    loaded = {m.name: m for m in inference.ListLoadedModels(inference_pb2.ListLoadedModelsRequest()).models}[name]
    spec = loaded.input_spec
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((5, 3, spec.n_samples)) * 1000 + 300).astype(np.float32)
    extras = {e: rng.uniform(100, 900, 5).astype(np.float32) for e in spec.extra_inputs}
    expected = _predict(inference, name, x, extras)
    if "sequence" in get_architecture(architecture).outputs:
        expected["sequence"] = _infer_sequence(inference_channel, name, x)

    s = stack.settings
    capsys.readouterr()
    code = main(["models", "export", f"{name}@{card['version']}", "--format", "onnx", "--triton-repo",
                 str(tmp_path), "--max-batch-size", "16", "--json", "--inference", s.inference_addr])
    out, err = capsys.readouterr()
    assert code == 0, err
    written = json.loads(out.strip().splitlines()[-1])
    version = card["version"]
    onnx_path, config_path = tmp_path / name / str(version) / "model.onnx", tmp_path / name / "config.pbtxt"
    assert sorted(written["files"]) == sorted([str(onnx_path), str(config_path)])

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"waveforms": x, **{k: v.reshape(-1, 1) for k, v in extras.items()}}
    assert [i.name for i in session.get_inputs()] == list(feeds)
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    for key, values in got.items():
        np.testing.assert_allclose(values.reshape(expected[key].shape), expected[key], rtol=1e-4, atol=1e-5,
                                   err_msg=f"{architecture}/{key}")

    if TRITON_PYTHON.exists():
        parsed = subprocess.run([str(TRITON_PYTHON), "-c", PARSE_CONFIG, str(config_path)], capture_output=True,
                                text=True, timeout=60)
        assert parsed.returncode == 0, parsed.stderr
        config = json.loads(parsed.stdout)
        assert (config["name"], config["platform"], config["max_batch_size"]) == (name, "onnxruntime_onnx", 16)
        assert [(i["name"], i["data_type"], [int(d) for d in i["dims"]]) for i in config["input"]] == [
            ("waveforms", "TYPE_FP32", [3, spec.n_samples]), *((e, "TYPE_FP32", [1]) for e in spec.extra_inputs)]
        assert [o["name"] for o in config["output"]] == list(got)
        assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 2000
        assert config["version_policy"]["specific"]["versions"] == [str(version)]  # int64 in JSON


def test_export_errors(inference) -> None:
    bad_format = inference_pb2.ExportModelRequest(name="exp-convnetquake", format="torchscript")
    assert rpc_code(lambda: inference.ExportModel(bad_format, timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
    unknown = inference_pb2.ExportModelRequest(name="exp-no-such-model")
    assert rpc_code(lambda: inference.ExportModel(unknown, timeout=30)) == grpc.StatusCode.NOT_FOUND
    too_big = inference_pb2.ExportModelRequest(name="exp-convnetquake", max_batch_size=10**6)
    assert rpc_code(lambda: inference.ExportModel(too_big, timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
