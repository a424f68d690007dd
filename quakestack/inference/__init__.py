"""Inference library: resident models, dynamic batching, continuous-stream annotation, feedback logs.

The gRPC servicer (services/inference) only translates protobuf to these calls.
"""
