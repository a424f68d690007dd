"""A tritonclient program (run with .venv-triton's Python, not the project's): one scenario, JSON out.

Usage: oip_client.py PROTOCOL URL PLAN.json OUT_DIR, PROTOCOL being grpc or http. The plan names the
models and the .npy windows; every answer (booleans, metadata, index, outputs, errors with their
status) goes to OUT_DIR/result.json and the output tensors to OUT_DIR/<case>.npz, so the test (in
the project's interpreter) compares them with Predict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    protocol, url, plan_path, out_dir = sys.argv[1:5]
    plan = json.loads(Path(plan_path).read_text())
    out = Path(out_dir)
    if protocol == "grpc":
        import tritonclient.grpc as client
    else:
        import tritonclient.http as client
    from tritonclient.utils import InferenceServerException, np_to_triton_dtype

    triton = client.InferenceServerClient(url=url)
    result: dict = {"live": triton.is_server_live(), "ready": triton.is_server_ready()}
    model = plan["model"]

    as_json = {"as_json": True} if protocol == "grpc" else {}
    result["server_metadata"] = triton.get_server_metadata(**as_json)
    result["metadata"] = triton.get_model_metadata(model, **as_json)
    index = triton.get_model_repository_index(**as_json)
    result["index"] = index.get("models", []) if protocol == "grpc" else index

    reload = plan["reload"]
    triton.unload_model(reload)
    result["ready_after_unload"] = triton.is_model_ready(reload)
    triton.load_model(reload)
    result["ready_after_load"] = triton.is_model_ready(reload)

    def infer(case: str, name: str, arrays: dict[str, np.ndarray], binary: bool = True, outputs=None, **kw):
        inputs = []
        for input_name, array in arrays.items():
            tensor = client.InferInput(input_name, list(array.shape), np_to_triton_dtype(array.dtype))
            if protocol == "http":
                tensor.set_data_from_numpy(array, binary_data=binary)
            else:
                tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        requested = None
        if outputs:
            requested = [client.InferRequestedOutput(o, binary_data=binary) if protocol == "http"
                         else client.InferRequestedOutput(o) for o in outputs]
        try:
            response = triton.infer(name, inputs, outputs=requested, **kw)
        except InferenceServerException as exc:
            result.setdefault("errors", {})[case] = {"status": str(exc.status()), "message": exc.message()}
            return
        answer = response.get_response(**as_json)
        names = [o["name"] for o in answer["outputs"]]
        np.savez(out / f"{case}.npz", **{n: response.as_numpy(n) for n in names})
        result.setdefault("infer", {})[case] = {"outputs": names, "model_version": answer.get("model_version"),
                                                "id": answer.get("id", "")}

    for case in plan["cases"]:
        arrays = {k: np.load(v) for k, v in case["inputs"].items()}
        infer(case["case"], case.get("model", model), arrays, binary=case.get("binary", True),
              outputs=case.get("outputs"), **({"request_id": case["id"]} if "id" in case else {}))
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
