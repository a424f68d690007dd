"""The Open Inference Protocol against the real stack, spoken by tritonclient (gRPC and HTTP) - a client
no one here wrote - in its own interpreter (.venv-triton: tritonclient needs protobuf<7), over real sockets.

Every answer is compared with what quakestack's own Predict returns for the same windows.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from quakestack.client import health_status, reflected_services
from quakestack.models.zoo import build_model, get_architecture
from quakestack.oip import open_inference_pb2
from quakestack.v1 import common_pb2, inference_pb2
from tests.gateway.helpers import http
from tests.inference.helpers import TINY_MAGNITUDE, register, windows_pb

REPO_ROOT = Path(__file__).resolve().parents[2]
TRITON_PYTHON = REPO_ROOT / ".venv-triton" / "bin" / "python"
CLIENT = Path(__file__).with_name("oip_client.py")
INFO_HPARAMS = {"n_samples": 3000, "width": 4, "n_blocks": 1, "info_hidden": 8, "pool_size": 20}
INFO_EXTRAS = get_architecture("maginfonet").input_spec.extra_inputs
CNQ_HPARAMS = {"channels": 4, "n_layers": 4, "n_clusters": 3}
MAX_BATCH = 4

pytestmark = pytest.mark.skipif(not TRITON_PYTHON.exists(),
                                reason="no .venv-triton with tritonclient: run scripts/setup.sh --dev")


def _x(n: int, length: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 3, length)) * 1000).astype(np.float32)


@pytest.fixture(scope="module")
def models(registry, inference) -> dict[str, str]:
    register(registry, "oip-mag", "convnetquake_ingv", TINY_MAGNITUDE, normalization="std")
    torch.manual_seed(3)
    register(registry, "oip-info", "maginfonet", INFO_HPARAMS, normalization="std",
             model=build_model("maginfonet", INFO_HPARAMS)[0].eval())  # initial weights: training needs extras
    register(registry, "oip-cnq", "convnetquake", CNQ_HPARAMS)
    inference.LoadModel(inference_pb2.LoadModelRequest(name="oip-mag", max_batch_size=MAX_BATCH,
                                                       max_queue_delay_us=5000), timeout=60)
    for name in ("oip-info", "oip-cnq"):
        inference.LoadModel(inference_pb2.LoadModelRequest(name=name), timeout=60)
    return {"magnitude": "oip-mag", "extras": "oip-info", "classes": "oip-cnq"}


@pytest.fixture(scope="module")
def cases(tmp_path_factory, models) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """The plan's cases (files the client reads) and the arrays behind them."""
    folder = tmp_path_factory.mktemp("oip-inputs")
    rng = np.random.default_rng(7)
    arrays = {
        "split": {"waveforms": _x(3 * MAX_BATCH - 2, 1000, 1)},  # 10 windows: the batcher splits them
        "json": {"waveforms": _x(3, 1000, 2)},
        "extras": {"waveforms": _x(3, 3000, 3),
                   **{name: rng.uniform(100, 900, (3, 1)).astype(np.float32) for name in INFO_EXTRAS}},
        "classes": {"waveforms": _x(4, 1000, 4)},
        "bad_dtype": {"waveforms": _x(2, 1000, 5).astype(np.float64)},
        "bad_shape": {"waveforms": _x(2, 999, 6)},
        "unknown_model": {"waveforms": _x(1, 1000, 7)},
        "nan": {"waveforms": np.where(np.arange(3000).reshape(1, 3, 1000) == 17, np.nan,
                                      _x(1, 1000, 8)).astype(np.float32)},
        "unknown_output": {"waveforms": _x(1, 1000, 9)},
    }
    options = {"split": {"id": "req-split"}, "json": {"binary": False, "outputs": ["magnitude"]},
               "extras": {"model": models["extras"]}, "classes": {"model": models["classes"]},
               "unknown_model": {"model": "no-such-model"}, "unknown_output": {"outputs": ["no_such_output"]}}
    plan = []
    for case, tensors in arrays.items():
        files = {}
        for name, array in tensors.items():
            files[name] = str(folder / f"{case}-{name}.npy")
            np.save(files[name], array)
        plan.append({"case": case, "inputs": files, **options.get(case, {})})
    return plan, arrays


def _run_client(protocol: str, url: str, models: dict, plan: list[dict], out: Path) -> dict:
    plan_file = out / "plan.json"
    plan_file.write_text(json.dumps({"model": models["magnitude"], "reload": models["classes"], "cases": plan}))
    done = subprocess.run([str(TRITON_PYTHON), str(CLIENT), protocol, url, str(plan_file), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "result.json").read_text())


def _predict(inference, model: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    x = arrays["waveforms"]
    extras = [common_pb2.ExtraInput(name=k, values=v.reshape(-1).tolist()) for k, v in arrays.items()
              if k != "waveforms"]
    response = inference.Predict(inference_pb2.PredictRequest(model=model, windows=windows_pb(x),
                                                              extra_inputs=extras), timeout=30)
    out: dict[str, list] = {}
    for p in response.predictions:
        for field, value in p.ListFields():
            out.setdefault(field.name, []).append(list(value) if field.name == "class_probabilities" else value)
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_tritonclient_against_the_stack(protocol, stack, inference, models, cases, tmp_path) -> None:
    plan, arrays = cases
    url = stack.settings.inference_addr if protocol == "grpc" else stack.endpoints().gateway.removeprefix("http://")
    result = _run_client(protocol, url, models, plan, tmp_path)

    assert result["live"] is True and result["ready"] is True
    assert result["server_metadata"]["name"] == "quakestack"
    assert "model_repository" in result["server_metadata"]["extensions"]
    meta = result["metadata"]
    assert meta["name"] == "oip-mag" and meta["versions"] == ["1"]
    shapes = {t["name"]: (t["datatype"], [int(s) for s in t["shape"]]) for t in meta["inputs"] + meta["outputs"]}
    assert shapes == {"waveforms": ("FP32", [-1, 3, 1000]), "magnitude": ("FP32", [-1, 1])}
    index = {m["name"]: m for m in result["index"]}
    assert index["oip-mag"]["state"] == "READY" and index["oip-mag"]["version"] == "1"
    assert result["ready_after_unload"] is False and result["ready_after_load"] is True

    infer, errors = result["infer"], result.get("errors", {})
    assert sorted(infer) == ["classes", "extras", "json", "split"], errors
    assert infer["split"]["id"] == "req-split" and infer["split"]["model_version"] == "1"
    for case, model in (("split", "oip-mag"), ("json", "oip-mag"), ("extras", "oip-info"), ("classes", "oip-cnq")):
        got = np.load(tmp_path / f"{case}.npz")
        expected = _predict(inference, model, arrays[case])
        n = arrays[case]["waveforms"].shape[0]
        for name in got.files:
            assert got[name].shape[0] == n, (case, name)
            np.testing.assert_allclose(got[name].reshape(expected[name].shape), expected[name], rtol=1e-4,
                                       atol=1e-5, err_msg=f"{case}/{name}")
    assert infer["classes"]["outputs"] == ["class_probabilities", "detection_probability", "location_cluster"]
    assert infer["json"]["outputs"] == ["magnitude"]

    invalid, not_found = ("StatusCode.INVALID_ARGUMENT", "StatusCode.NOT_FOUND") if protocol == "grpc" \
        else ("400", "404")
    assert {case: e["status"] for case, e in errors.items()} == {
        "bad_dtype": invalid, "bad_shape": invalid, "unknown_model": not_found, "nan": invalid,
        "unknown_output": invalid}
    assert "must be FP32" in errors["bad_dtype"]["message"]
    assert "[N, 3, 1000]" in errors["bad_shape"]["message"]
    assert "no-such-model" in errors["unknown_model"]["message"]
    assert "NaN" in errors["nan"]["message"]


def test_health_and_reflection_list_the_protocol(inference_channel, models) -> None:
    assert health_status(inference_channel, "inference.GRPCInferenceService") == "SERVING"
    assert "inference.GRPCInferenceService" in reflected_services(inference_channel)


def test_messages_match_tritonclients_own_definition() -> None:
    """Field names, numbers and types of every message tritonclient shares with our proto."""
    script = ("import json; from tritonclient.grpc import service_pb2 as s\n"
              "def walk(d, p=''):\n"
              "    out = {p + d.name: sorted((f.name, f.number, f.type, f.label == 3) for f in d.fields)}\n"
              "    for n in d.nested_types: out.update(walk(n, p + d.name + '.'))\n"
              "    return out\n"
              "o = {}\n"
              "for d in s.DESCRIPTOR.message_types_by_name.values(): o.update(walk(d))\n"
              "print(json.dumps(o))")
    theirs = json.loads(subprocess.run([str(TRITON_PYTHON), "-c", script], capture_output=True, text=True,
                                       timeout=60, check=True).stdout)

    def walk(d, prefix=""):
        out = {prefix + d.name: sorted([f.name, f.number, f.type, f.is_repeated] for f in d.fields)}
        for nested in d.nested_types:
            out.update(walk(nested, prefix + d.name + "."))
        return out

    ours = {}
    for d in open_inference_pb2.DESCRIPTOR.message_types_by_name.values():
        ours.update(walk(d))
    # Map entries are generated per field; both sides name them the same way.
    assert len(ours) > 20
    for name, fields in ours.items():
        assert name in theirs, f"{name} is not in Triton's grpc_service.proto"
        assert fields == [list(f) for f in theirs[name]], name


def test_rest_json_and_openapi(stack, inference, models) -> None:
    """The REST form with plain JSON tensors (what curl and KServe clients send) and its /openapi.json entries."""
    base = stack.endpoints().gateway
    x = _x(2, 1000, 21)
    body = {"id": "rest-1", "inputs": [{"name": "waveforms", "datatype": "FP32", "shape": list(x.shape),
                                        "data": x.tolist()}]}
    reply = http("POST", base + "/v2/models/oip-mag/infer", json.dumps(body).encode(),
                 {"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    answer = reply.json()
    assert answer["id"] == "rest-1" and answer["model_name"] == "oip-mag"
    (output,) = answer["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("magnitude", "FP32", [2, 1])
    expected = _predict(inference, "oip-mag", {"waveforms": x})["magnitude"]
    np.testing.assert_allclose(output["data"], expected, rtol=1e-4, atol=1e-5)

    body["inputs"][0]["data"][0][0][0] = float("nan")
    reply = http("POST", base + "/v2/models/oip-mag/infer", json.dumps(body).encode(),
                 {"Content-Type": "application/json"})
    assert reply.status == 400 and "NaN" in reply.json()["error"]
    for field, value, expected in (("parameters", [None, None], "parameters must be a JSON object"),
                                   ("parameters", 7, "parameters must be a JSON object")):
        malformed = {"inputs": [{**body["inputs"][0], field: value}]}
        reply = http("POST", base + "/v2/models/oip-mag/infer", json.dumps(malformed).encode(),
                     {"Content-Type": "application/json"})
        assert reply.status == 400 and expected in reply.json()["error"], reply.body
    reply = http("POST", base + "/v2/models/oip-mag/infer", json.dumps({**body, "outputs": 3}).encode(),
                 {"Content-Type": "application/json"})
    assert reply.status == 400 and "outputs must be an array" in reply.json()["error"], reply.body
    assert http("GET", base + "/v2/models/no-such-model/ready").status == 400
    assert http("GET", base + "/v2/models/no-such-model").json()["code"] == "NOT_FOUND"
    assert http("GET", base + "/v2/health/live").json() == {"live": True}

    paths = http("GET", base + "/openapi.json").json()["paths"]
    assert {"/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{name}", "/v2/models/{name}/ready",
            "/v2/models/{name}/versions/{version}", "/v2/models/{model_name}/infer",
            "/v2/repository/index", "/v2/repository/models/{model_name}/load",
            "/v2/repository/models/{model_name}/unload", "/v1/models/{name}:export"} <= set(paths)
    infer_schema = paths["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    assert "data" in infer_schema["schema"]["properties"]["inputs"]["items"]["properties"]
