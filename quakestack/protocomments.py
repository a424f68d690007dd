"""The protos' comments by full name (`quakestack.v1.Waveforms.data`), kept beside the generated stubs.

Generated stubs carry no source info, so `quakestack protos` writes the comments to
`quakestack/v1/comments.json`; the gateway turns them into OpenAPI descriptions and summaries.
"""

from __future__ import annotations

import json
from pathlib import Path

COMMENTS_FILE = "comments.json"


def load_comments() -> dict[str, str]:
    """The committed comments (empty if the file is missing, e.g. mid-regeneration)."""
    path = Path(__file__).resolve().parent / "v1" / COMMENTS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
