"""Fixtures of the deployment checks (defined in deploy_helpers.py, next to the helpers)."""

from deploy_helpers import compose_configs, env_file, rendered_overlays  # noqa: F401
