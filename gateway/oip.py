"""The Open Inference Protocol's REST form (KServe v2 / Triton) on the routes of inference.GRPCInferenceService.

The routes themselves come from the proto's google.api.http rules like every other route; only the
bodies differ from the proto3 JSON mapping, because OIP clients (tritonclient.http, KServe's client,
curl scripts) speak the protocol's own JSON:

- tensors carry ``data`` (a flat or nested JSON array) or, with Triton's binary tensor extension,
  raw bytes after a JSON header whose length is the ``Inference-Header-Content-Length`` header;
  shapes are JSON integers; parameters are plain JSON values (``{"binary_data_output": true}``);
- outputs come back as ``data`` or, when asked for (``binary_data_output`` / an output's
  ``binary_data``), in binary after the JSON header;
- health answers 200 for true and a 4xx for false; the repository index is a JSON array;
- errors carry ``{"error": message}`` besides the gateway's ``code``, ``message`` and ``details``.

Everything is converted to and from the gRPC messages here, so the inference service sees exactly
what a gRPC client would send. ``OPENAPI`` documents these bodies in /openapi.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
from aiohttp import web
from google.protobuf.message import Message

from gateway.errors import ApiError
from gateway.routes import Route
from gateway.transcode import build_request, invalid
from quakestack.inference.oip import DTYPES
from quakestack.oip import open_inference_pb2 as oip

OIP_SERVICE = "inference.GRPCInferenceService"
HEADER_LENGTH = "Inference-Header-Content-Length"
HEALTH = {"ServerLive": "live", "ServerReady": "ready", "ModelReady": "ready"}
_INPUT_KEYS = {"name", "shape", "datatype", "parameters", "data"}
_REQUEST_KEYS = {"id", "parameters", "inputs", "outputs"}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def is_oip(route: Route) -> bool:
    return route.service.full_name == OIP_SERVICE


def _json(raw: bytes, what: str) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(f"{what} is not valid JSON: {exc}") from None


def _parameter(value: Any, cls: type[Message]) -> Message:
    """A plain JSON value as an InferParameter / ModelRepositoryParameter."""
    if isinstance(value, bool):
        return cls(bool_param=value)
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise invalid(f"parameter value {value} is outside int64")
        return cls(int64_param=value)
    if isinstance(value, str):
        return cls(string_param=value)
    if isinstance(value, float) and "double_param" in cls.DESCRIPTOR.fields_by_name:
        return cls(double_param=value)
    raise invalid(f"parameter value {value!r} must be a boolean, an integer or a string")


def _parameters(values: Any, target: Any, cls: type[Message]) -> None:
    if values is None:
        return
    if not isinstance(values, dict):
        raise invalid("parameters must be a JSON object")
    for key, value in values.items():
        target[str(key)].CopyFrom(_parameter(value, cls))


def _plain(parameters: Mapping[str, Message]) -> dict[str, Any]:
    out = {}
    for key, value in parameters.items():
        which = value.WhichOneof("parameter_choice")
        if which is not None:
            out[key] = getattr(value, which)
    return out


def _shape(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                              and INT64_MIN <= s <= INT64_MAX for s in value):
        raise invalid(f"input {name!r}: shape must be an array of int64 integers")
    return value


def _binary_size(parameters: Any) -> int | None:
    if isinstance(parameters, dict) and "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise invalid("binary_data_size must be a non-negative integer")
        return size
    return None


def infer_request(route: Route, path_params: Mapping[str, str], body: bytes,
                  headers: Mapping[str, str]) -> oip.ModelInferRequest:
    """An OIP REST inference request (JSON, or JSON header + binary tensors) as a ModelInferRequest."""
    header_length = headers.get(HEADER_LENGTH)
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise invalid(f"{HEADER_LENGTH} must be the length of the JSON header (0..{len(body)})")
        document, blob = _json(body[:int(header_length)], "the inference header"), body[int(header_length):]
    else:
        document, blob = _json(body, "request body"), b""
    if not isinstance(document, dict):
        raise invalid("request body must be a JSON object")
    unknown = sorted(set(document) - _REQUEST_KEYS)
    if unknown:
        raise invalid(f"unknown request fields {unknown}; known: {sorted(_REQUEST_KEYS)}")
    request = oip.ModelInferRequest(model_name=path_params.get("model_name", ""),
                                    model_version=path_params.get("model_version", ""))
    if not isinstance(document.get("id", ""), str):
        raise invalid("id must be a string")
    request.id = document.get("id", "")
    _parameters(document.get("parameters"), request.parameters, oip.InferParameter)
    inputs = document.get("inputs", [])
    if not isinstance(inputs, list):
        raise invalid("inputs must be an array of tensors")
    offset = 0
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise invalid("each input must be a JSON object")
        unknown = sorted(set(tensor) - _INPUT_KEYS)
        if unknown:
            raise invalid(f"unknown input fields {unknown}; known: {sorted(_INPUT_KEYS)}")
        name, datatype = tensor.get("name"), tensor.get("datatype")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise invalid("each input needs a string name and datatype")
        shape = _shape(tensor.get("shape"), name)
        pb = request.inputs.add(name=name, datatype=datatype, shape=shape)
        given = tensor.get("parameters")
        if given is not None and not isinstance(given, dict):
            raise invalid(f"input {name!r}: parameters must be a JSON object, got {type(given).__name__}")
        size = _binary_size(given)
        params = {k: v for k, v in (given or {}).items() if k != "binary_data_size"}
        _parameters(params, pb.parameters, oip.InferParameter)
        if size is not None:
            if offset + size > len(blob):
                raise invalid(f"input {name!r}: binary_data_size {size} runs past the end of the body")
            request.raw_input_contents.append(blob[offset:offset + size])
            offset += size
        else:
            request.raw_input_contents.append(_data_bytes(tensor.get("data"), datatype, name))
    if offset != len(blob):
        raise invalid(f"{len(blob) - offset} bytes after the last binary input")
    outputs = document.get("outputs") or []
    if not isinstance(outputs, list):
        raise invalid("outputs must be an array of requested outputs")
    for wanted in outputs:
        if not isinstance(wanted, dict) or not isinstance(wanted.get("name"), str):
            raise invalid("each requested output needs a string name")
        out = request.outputs.add(name=wanted["name"])
        _parameters(wanted.get("parameters"), out.parameters, oip.InferParameter)
    return request


def _data_bytes(data: Any, datatype: str, name: str) -> bytes:
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise invalid(f"input {name!r}: datatype {datatype!r} cannot be given as JSON data; "
                      f"known: {sorted(DTYPES)}")
    if not isinstance(data, list):
        raise invalid(f"input {name!r}: data must be a JSON array (or use the binary tensor extension)")
    try:
        values = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise invalid(f"input {name!r}: data is not an array of {datatype}: {exc}") from None
    return values.tobytes()


def build(route: Route, path_params: Mapping[str, str], query: Mapping[str, list[str]], body: bytes,
          headers: Mapping[str, str]) -> Message:
    """The gRPC request of an OIP route."""
    if route.method.name == "ModelInfer":
        return infer_request(route, path_params, body, headers)
    if route.body == "*" and route.method.input_type.fields_by_name.get("parameters") is not None:
        document = _json(body, "request body")
        if isinstance(document, dict) and isinstance(document.get("parameters"), dict):
            plain = document.pop("parameters")
            request = build_request(route, path_params, query, json.dumps(document).encode())
            _parameters(plain, request.parameters, oip.ModelRepositoryParameter)
            return request
    return build_request(route, path_params, query, body)


def _binary_outputs(request: oip.ModelInferRequest) -> set[str]:
    every = _plain(request.parameters).get("binary_data_output") is True
    names = {o.name for o in request.outputs if _plain(o.parameters).get("binary_data") is True}
    return {"*"} if every and not request.outputs else names | ({"*"} if every else set())


def infer_response(request: oip.ModelInferRequest, reply: oip.ModelInferResponse) -> web.Response:
    binary = _binary_outputs(request)
    outputs, blobs = [], []
    for tensor, raw in zip(reply.outputs, reply.raw_output_contents, strict=True):
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        params = _plain(tensor.parameters)
        if "*" in binary or tensor.name in binary:
            entry["parameters"] = {**params, "binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            if params:
                entry["parameters"] = params
            entry["data"] = np.frombuffer(raw, dtype=DTYPES[tensor.datatype]).tolist()
        outputs.append(entry)
    document: dict[str, Any] = {"model_name": reply.model_name, "model_version": reply.model_version,
                                "outputs": outputs}
    if reply.id:
        document["id"] = reply.id
    if reply.parameters:
        document["parameters"] = _plain(reply.parameters)
    header = json.dumps(document).encode()
    if not blobs:
        return web.Response(body=header, content_type="application/json")
    return web.Response(body=header + b"".join(blobs), content_type="application/octet-stream",
                        headers={HEADER_LENGTH: str(len(header))})


def respond(route: Route, request: Message, reply: Message) -> web.Response:
    """The OIP REST answer for one reply."""
    name = route.method.name
    if name in HEALTH:
        if getattr(reply, HEALTH[name]):
            return web.json_response({HEALTH[name]: True})
        what = "the server" if name != "ModelReady" else f"model {request.name!r}"  # type: ignore[attr-defined]
        raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, f"{what} is not {HEALTH[name]}", oip=True)
    if name == "ModelInfer":
        return infer_response(request, reply)  # type: ignore[arg-type]
    if name == "ModelMetadata":
        tensors = lambda items: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}  # noqa: E731
                                 for t in items]
        return web.json_response({"name": reply.name, "versions": list(reply.versions),  # type: ignore[attr-defined]
                                  "platform": reply.platform, "inputs": tensors(reply.inputs),  # type: ignore
                                  "outputs": tensors(reply.outputs)})  # type: ignore[attr-defined]
    if name == "RepositoryIndex":
        return web.json_response([{"name": m.name, "version": m.version, "state": m.state, "reason": m.reason}
                                  for m in reply.models])  # type: ignore[attr-defined]
    if name == "ServerMetadata":
        return web.json_response({"name": reply.name, "version": reply.version,  # type: ignore[attr-defined]
                                  "extensions": list(reply.extensions)})  # type: ignore[attr-defined]
    return web.json_response({})


# -- /openapi.json: the bodies above ------------------------------------------------------------
_STR, _BOOL, _OBJ = {"type": "string"}, {"type": "boolean"}, {"type": "object", "additionalProperties": True}
_SHAPE = {"type": "array", "items": {"type": "integer"}}
_TENSOR_META = {"type": "object", "required": ["name", "datatype", "shape"],
                "properties": {"name": _STR, "datatype": _STR, "shape": _SHAPE}}
_INFER_INPUT = {"type": "object", "required": ["name", "shape", "datatype"], "additionalProperties": False,
                "properties": {"name": _STR, "shape": _SHAPE, "datatype": _STR, "parameters": _OBJ,
                               "data": {"type": "array", "items": {}}}}
_INFER_OUTPUT = {"type": "object", "required": ["name", "shape", "datatype"],
                 "properties": {"name": _STR, "shape": _SHAPE, "datatype": _STR, "parameters": _OBJ,
                                "data": {"type": "array", "items": {}}}}
OPENAPI: dict[str, tuple[dict[str, Any] | None, dict[str, Any]]] = {
    "ServerLive": (None, {"type": "object", "properties": {"live": _BOOL}}),
    "ServerReady": (None, {"type": "object", "properties": {"ready": _BOOL}}),
    "ModelReady": (None, {"type": "object", "properties": {"ready": _BOOL}}),
    "ServerMetadata": (None, {"type": "object", "properties": {"name": _STR, "version": _STR,
                                                               "extensions": {"type": "array", "items": _STR}}}),
    "ModelMetadata": (None, {"type": "object", "properties": {
        "name": _STR, "versions": {"type": "array", "items": _STR}, "platform": _STR,
        "inputs": {"type": "array", "items": _TENSOR_META}, "outputs": {"type": "array", "items": _TENSOR_META}}}),
    "ModelInfer": (
        {"type": "object", "additionalProperties": False, "properties": {
            "id": _STR, "parameters": _OBJ, "inputs": {"type": "array", "items": _INFER_INPUT},
            "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                   "properties": {"name": _STR, "parameters": _OBJ}}}}},
        {"type": "object", "properties": {"model_name": _STR, "model_version": _STR, "id": _STR,
                                          "parameters": _OBJ, "outputs": {"type": "array", "items": _INFER_OUTPUT}}}),
    "RepositoryIndex": (
        {"type": "object", "additionalProperties": False,
         "properties": {"repository_name": _STR, "repositoryName": _STR, "ready": _BOOL}},
        {"type": "array", "items": {"type": "object", "properties": {
            "name": _STR, "version": _STR, "state": _STR, "reason": _STR}}}),
    "RepositoryModelLoad": ({"type": "object", "additionalProperties": False, "properties": {"parameters": _OBJ}},
                            {"type": "object"}),
    "RepositoryModelUnload": ({"type": "object", "additionalProperties": False,
                               "properties": {"parameters": _OBJ}}, {"type": "object"}),
}
DESCRIPTION = ("Open Inference Protocol (KServe v2 / Triton) REST form: tensors as `data` arrays or Triton's "
               "binary tensor extension (`Inference-Header-Content-Length`), plain JSON parameters, health as "
               "200 (true) or 400 (false), errors with an `error` message. ")
