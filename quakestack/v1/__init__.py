"""Generated protobuf and gRPC stubs of quakestack.v1 (python -m quakestack.protogen)."""
