"""Generate `docs/http.md` from the app's OpenAPI schema, so the HTTP reference never drifts.

`python -m unhardcoded.app._reference --write` rewrites the file; `--check` exits 1 when it is
stale; tests/test_docs.py fails when the committed file differs from what this module renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from unhardcoded.app._factory import create_app
from unhardcoded.settings import Settings

__all__ = ["HTTP_REFERENCE_PATH", "openapi_schema", "render_http_reference"]

HTTP_REFERENCE_PATH = Path(__file__).resolve().parents[2] / "docs" / "http.md"

_HEADER = """# HTTP API reference

Generated from the gateway's OpenAPI schema by `python -m unhardcoded.app._reference --write`;
the test suite fails when this file and the code disagree. A running server serves the same
schema at `/openapi.json` and an interactive page at `/docs`. Start one with
`unhardcoded serve --echo` or watch it at work in `unhardcoded demo`. Key scopes: route (chat
completions, /x/rank), read:own (the tenant's decisions), read:all, admin.
"""


def openapi_schema() -> dict[str, Any]:
    """The app's OpenAPI document (building the app opens nothing: no database, no network)."""
    app = create_app(Settings(catalog=None), environ={})
    return app.openapi()


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = str(schema.get("type", "any"))
    if kind == "array" and "items" in schema:
        return f"array of {_type(schema['items'])}"
    return kind


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _body_section(body: dict[str, Any]) -> list[str]:
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return []
    required = set(schema.get("required", []))
    extra = schema.get("additionalProperties", True) is not False
    lines = [
        "",
        "Request body (JSON"
        + (", other fields passed through" if extra else ", no other fields")
        + "):",
        "",
        "| field | type | required | default | description |",
        "|---|---|---|---|---|",
    ]
    for name, prop in properties.items():
        default = json.dumps(prop["default"]) if "default" in prop else ""
        lines.append(
            f"| `{name}` | {_type(prop)} | {'yes' if name in required else 'no'} | "
            f"{_cell(default)} | {_cell(str(prop.get('description', '')))} |"
        )
    return lines


def _parameters_section(parameters: list[dict[str, Any]]) -> list[str]:
    if not parameters:
        return []
    lines = [
        "",
        "| parameter | in | type | required | constraints |",
        "|---|---|---|---|---|",
    ]
    for param in parameters:
        schema = param.get("schema", {})
        limits = [
            f"{key} {schema[key]}"
            for key in ("minimum", "maximum", "maxLength", "default")
            if key in schema
        ]
        for option in schema.get("anyOf", []):
            limits += [f"{k} {option[k]}" for k in ("maxLength",) if k in option]
        lines.append(
            f"| `{param['name']}` | {param['in']} | {_type(schema)} | "
            f"{'yes' if param.get('required') else 'no'} | {_cell(', '.join(limits))} |"
        )
    return lines


def render_http_reference(schema: dict[str, Any] | None = None) -> str:
    """Markdown for every route of the schema: method, path, summary, description, parameters,
    request body fields and response codes."""
    schema = schema or openapi_schema()
    # No version number: it differs between a source tree and an installed package.
    parts = [_HEADER, schema["info"].get("description", "").strip()]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            lines = [
                "",
                f"## `{method.upper()} {path}`",
                "",
                f"**{_cell(operation.get('summary', ''))}.**",
            ]
            description = operation.get("description", "").strip()
            if description:
                lines += ["", description]
            lines += _parameters_section(operation.get("parameters", []))
            lines += _body_section(operation.get("requestBody", {}))
            responses = operation.get("responses", {})
            if responses:
                lines += ["", "Responses:", ""]
                for code, response in responses.items():
                    lines.append(f"- `{code}`: {_cell(response.get('description', ''))}")
            parts.append("\n".join(lines))
    return "\n".join(parts) + "\n"


def _main(argv: list[str]) -> int:
    text = render_http_reference()
    if argv == ["--write"]:
        HTTP_REFERENCE_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {HTTP_REFERENCE_PATH}")
        return 0
    if argv == ["--check"]:
        current = (
            HTTP_REFERENCE_PATH.read_text(encoding="utf-8") if HTTP_REFERENCE_PATH.exists() else ""
        )
        if current != text:
            print(
                f"{HTTP_REFERENCE_PATH} is stale: run python -m unhardcoded.app._reference --write"
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
