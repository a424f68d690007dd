"""Generated protobuf and gRPC stubs of the Open Inference Protocol (KServe v2 / Triton) (python -m quakestack.protogen)."""
