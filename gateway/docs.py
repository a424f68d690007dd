"""A self-contained, readable HTML reference of the REST API, rendered from the OpenAPI document itself.

No CDN (the machines may have no internet) and no JavaScript: routes grouped by service with their
summary, description, parameters and bodies; every schema as a table of fields with type and
description (the protos' comments), linked to each other. The page, the spec and the router are
built from the same descriptors, so they can never disagree.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;line-height:1.45}
nav{position:fixed;top:0;bottom:0;left:0;width:17rem;overflow:auto;background:#f7f7f9;border-right:1px solid #ddd;
padding:1rem;font-size:.85rem}nav a{display:block;color:#333;text-decoration:none;padding:.1rem 0}
nav a:hover{text-decoration:underline}nav h3{margin:.8rem 0 .2rem;font-size:.8rem;text-transform:uppercase;color:#666}
main{margin-left:19rem;max-width:64rem;padding:1rem 2rem}
h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}
.op{border:1px solid #ddd;border-radius:6px;margin:.8rem 0;padding:.6rem .9rem}
.verb{display:inline-block;min-width:4.2rem;font-weight:bold;font-family:monospace}
.get{color:#1565c0}.post{color:#2e7d32}.put,.patch{color:#ef6c00}.delete{color:#c62828}
.summary{font-weight:600}.desc{white-space:pre-wrap;margin:.3rem 0}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
table{border-collapse:collapse;margin:.4rem 0;width:100%}
td,th{border:1px solid #e3e3e3;padding:.2rem .5rem;text-align:left;vertical-align:top}th{background:#fafafa}
td.d{white-space:pre-wrap}.schema{margin:1.4rem 0}
"""


def _anchor(name: str) -> str:
    return "schema-" + name.replace(".", "-")


def _type_text(schema: dict[str, Any] | None) -> str:
    """A short, linked type: `Waveforms`, `array of string`, `string (date-time)`, `enum`."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#{_anchor(name)}"><code>{escape(name.rsplit(".", 1)[-1])}</code></a>'
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _type_text(schema["allOf"][0])
    if schema.get("type") == "array":
        return "array of " + _type_text(schema.get("items"))
    if "enum" in schema:
        return "enum: " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    if "anyOf" in schema:
        return "number"
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of " + _type_text(schema["additionalProperties"])
    text = escape(str(schema.get("type", "any")))
    return text + (f" ({escape(schema['format'])})" if "format" in schema else "")


def _desc(schema: dict[str, Any] | None) -> str:
    return escape((schema or {}).get("description", ""))


def _operation(path: str, verb: str, op: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
        f"<td>{_type_text(p.get('schema'))}</td><td class=\"d\">{_desc(p.get('schema'))}</td></tr>"
        for p in op.get("parameters", []))
    parts = [f'<div class="op" id="{escape(op.get("operationId", ""))}"><span class="verb {verb}">{verb.upper()}'
             f"</span> <code>{escape(path)}</code> — <span class=\"summary\">{escape(op.get('summary', ''))}</span>"
             f"<p class=\"desc\">{escape(op.get('description', ''))}</p>"]
    if rows:
        parts.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>"
                     f"{rows}</table>")
    for media, content in op.get("requestBody", {}).get("content", {}).items():
        parts.append(f"<p>request body <code>{escape(media)}</code>: {_type_text(content.get('schema'))}</p>")
    ok = op.get("responses", {}).get("200", {})
    for media, content in ok.get("content", {}).items():
        schema = op.get("x-stream-message") if media != "application/octet-stream" else None
        parts.append(f"<p>200 <code>{escape(media)}</code>: {_type_text(schema or content.get('schema'))}</p>")
    parts.append(f'<p>errors: <a href="#{_anchor("Error")}"><code>Error</code></a></p></div>')
    return "".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td><code>{escape(field)}</code></td><td>{_type_text(prop)}</td>"
                   f"<td class=\"d\">{_desc(prop)}</td></tr>"
                   for field, prop in schema.get("properties", {}).items())
    table = (f"<table><tr><th>field</th><th>type</th><th>description</th></tr>{rows}</table>" if rows
             else f"<pre>{escape(json.dumps(schema, indent=1))}</pre>")
    return (f'<div class="schema" id="{_anchor(name)}"><h3><code>{escape(name)}</code></h3>'
            f"<p class=\"desc\">{_desc(schema)}</p>{table}</div>")


def render_docs(document: dict[str, Any]) -> str:
    """The /docs page."""
    info = document.get("info", {})
    title = escape(info.get("title", "API"))
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, verbs in document.get("paths", {}).items():
        for verb, op in verbs.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((path, verb, op))
    nav, sections = [], []
    for tag, ops in sorted(by_tag.items()):
        nav.append(f"<h3>{escape(tag)}</h3>" + "".join(
            f'<a href="#{escape(op.get("operationId", ""))}">{escape(op.get("summary", path))}</a>'
            for path, _, op in ops))
        sections.append(f"<h2>{escape(tag)}</h2>" + "".join(_operation(p, v, op) for p, v, op in ops))
    schemas = document.get("components", {}).get("schemas", {})
    auth = ("<p>Send <code>Authorization: Bearer &lt;token&gt;</code>; read-only tokens may only GET.</p>"
            if document.get("security") else "<p>Authentication is off on this gateway.</p>")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style>"
            f"</head><body><nav><strong>{title}</strong>{''.join(nav)}<h3>schemas</h3>"
            f'<a href="#schemas">all schemas</a></nav><main><h1>{title}</h1>'
            f"<p>{escape(info.get('description', ''))} Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>."
            f"</p>{auth}{''.join(sections)}<h2 id=\"schemas\">Schemas</h2>"
            f"{''.join(_schema(n, s) for n, s in schemas.items())}</main></body></html>")
