"""The quakestack services: thin servicers translating protobuf to library calls."""
