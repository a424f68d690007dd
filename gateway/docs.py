"""A self-contained HTML page listing every route with its parameters and schemas.

Rendered from the OpenAPI document itself (no CDN: the machines may have no internet), so the
page, the spec and the router can never disagree.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.verb{display:inline-block;min-width:4.5rem;font-weight:bold;font-family:monospace}
.get{color:#1565c0}.post{color:#2e7d32}.put,.patch{color:#ef6c00}.delete{color:#c62828}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f6f6f6;padding:.5rem;overflow:auto}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #ddd;padding:.15rem .5rem;text-align:left}
"""


def _schema_text(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    ref = schema.get("$ref", "")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}"><code>{escape(name)}</code></a>'
    return f"<code>{escape(json.dumps(schema))}</code>"


def _operation(path: str, verb: str, op: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
        f"<td>{_schema_text(p.get('schema'))}</td></tr>" for p in op.get("parameters", []))
    parts = [f'<div class="op"><span class="verb {verb}">{verb.upper()}</span> <code>{escape(path)}</code> '
             f"— {escape(op.get('summary', ''))}<p>{escape(op.get('description', ''))}</p>"]
    if rows:
        parts.append(f"<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>{rows}</table>")
    for media, content in op.get("requestBody", {}).get("content", {}).items():
        parts.append(f"<p>request body <code>{escape(media)}</code>: {_schema_text(content.get('schema'))}</p>")
    ok = op.get("responses", {}).get("200", {})
    for media, content in ok.get("content", {}).items():
        schema = op.get("x-stream-message") or content.get("schema")
        parts.append(f"<p>200 <code>{escape(media)}</code>: {_schema_text(schema)}</p>")
    parts.append('<p>errors: <a href="#schema-Error"><code>Error</code></a></p></div>')
    return "".join(parts)


def render_docs(document: dict[str, Any]) -> str:
    """The /docs page."""
    info = document.get("info", {})
    ops = [_operation(path, verb, op) for path, verbs in document.get("paths", {}).items()
           for verb, op in verbs.items()]
    schemas = [f'<details id="schema-{escape(name)}"><summary><code>{escape(name)}</code></summary>'
               f"<pre>{escape(json.dumps(schema, indent=2))}</pre></details>"
               for name, schema in document.get("components", {}).get("schemas", {}).items()]
    auth = ("<p>Send <code>Authorization: Bearer &lt;token&gt;</code>; read-only tokens may only GET.</p>"
            if document.get("security") else "<p>Authentication is off on this gateway.</p>")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{escape(info.get('title', 'API'))}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(info.get('title', 'API'))}</h1>"
            f"<p>{escape(info.get('description', ''))} Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>."
            f"</p>{auth}<h2>Routes</h2>{''.join(ops)}<h2>Schemas</h2>{''.join(schemas)}</body></html>")
