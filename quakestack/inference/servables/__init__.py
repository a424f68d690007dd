"""Registered models made ready to serve, one module per job so that none imports another that imports it
back: ``base`` (ServingSpec, the Servable protocol, what every servable shares), ``zoo`` (our architectures),
``seisbench`` (SeisBench pickers), ``factory`` (build_servable: the one a model card asks for)."""
