"""mkdocs hooks: the CLI and HTTP references are generated from the code at every docs build, never copied by hand.

In a page, the line `<!-- generated: cli -->` becomes the reference of the `ask` and `qa` commands (from the Typer
app in qa/cli.py, with typer's own Markdown generator), and `<!-- generated: http -->` the reference of every HTTP
operation and schema (from the OpenAPI schema that api.app serves at /openapi.json, also written to the site as
openapi.json). `<!-- generated: include FILE -->` brings in a Markdown file the code writes at the repository root
(RELIABILITY.md, BENCHMARKS.md), without its title and with its headings below the page's heading before the line.
Nothing is loaded but the code: no models, no index, no network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.structure.files import File

MARKER = re.compile(r"^<!-- generated: (\w+)(?: (\S+))? -->$", re.M)


# CLI ---------------------------------------------------------------------------------------------------------
def _click_docs(command, name: str) -> str:
    import click
    import typer.cli

    return typer.cli.get_docs_for_click(obj=command, ctx=click.Context(command, info_name=name), name=name, title=name)


def cli_reference() -> str:
    import typer
    import typer.main

    from qa.cli import app, ask_main

    ask_app = typer.Typer(add_completion=False)  # what `ask` runs: typer.run(ask_main)
    ask_app.command()(ask_main)
    pages = [_click_docs(typer.main.get_command(ask_app), "ask"), _click_docs(typer.main.get_command(app), "qa")]
    return "\n\n".join(_demote(page) for page in pages)


def _headings(markdown: str) -> list[tuple[int, int]]:
    """(line number, level) of each heading outside code fences."""
    found, fenced = [], False
    for n, line in enumerate(markdown.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", line):
            found.append((n, len(line) - len(line.lstrip("#"))))
    return found


def _demote(markdown: str, levels: int = 1) -> str:
    """Headings `levels` levels down (the page has its own title); code blocks stay as they are."""
    lines = markdown.splitlines()
    for n, _ in _headings(markdown):
        lines[n] = "#" * levels + lines[n]
    return "\n".join(lines)


# HTTP --------------------------------------------------------------------------------------------------------
def openapi_schema() -> dict:
    from api.app import create_app

    return create_app().openapi()


def _anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _type(schema: dict) -> str:
    """A JSON schema as a short type expression, references linked to their section below."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in schema or "oneOf" in schema:
        return " \\| ".join(_type(s) for s in schema.get("anyOf") or schema["oneOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'], ensure_ascii=False)}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    return f"`{kind}`"


def _constraints(schema: dict) -> str:
    keys = {"minimum": "≥", "maximum": "≤", "minLength": "min length", "maxLength": "max length",
            "maxItems": "max items", "pattern": "pattern"}
    parts = [f"{label} {schema[key]:g}" if isinstance(schema[key], float) else f"{label} `{schema[key]}`"
             for key, label in keys.items() if key in schema]
    parts += [extra for option in schema.get("anyOf", []) if (extra := _constraints(option))]
    if "default" in schema and schema["default"] not in (None, [], {}):
        parts.append(f"default `{json.dumps(schema['default'], ensure_ascii=False)}`")
    return "; ".join(parts)


def _yes(flag) -> str:
    return "yes" if flag else "no"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _operation(path: str, method: str, op: dict) -> list[str]:
    lines = [f"#### `{method.upper()} {path}`", "", op.get("description") or op.get("summary", ""), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required |", "|---|---|---|---|"]
        lines += [f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | {_yes(p.get('required'))} |"
                  for p in params]
        lines.append("")
    body = op.get("requestBody", {}).get("content", {})
    for content_type, media in body.items():
        lines += [f"Request body (`{content_type}`): {_type(media.get('schema', {}))}", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        schemas = [m.get("schema", {}) for m in response.get("content", {}).values()]
        shown = _type(schemas[0]) if schemas and schemas[0] else "JSON"
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {shown} |")
    return lines + [""]


def _schema(name: str, schema: dict) -> list[str]:
    lines = [f"#### {name} {{#{_anchor(name)}}}", ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    properties = schema.get("properties", {})
    if not properties:
        return lines + [f"Type: {_type(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | constraints |", "|---|---|---|---|"]
    for field, spec in properties.items():
        note = _constraints(spec) + (" (read-only, computed)" if spec.get("readOnly") else "")
        lines.append(f"| `{field}` | {_type(spec)} | {_yes(field in required)} | {_cell(note)} |")
    if schema.get("additionalProperties") is False:
        lines += ["", "Other fields are refused (422)."]
    return lines + [""]


def http_reference(spec: dict | None = None) -> str:
    spec = spec or openapi_schema()
    info = spec["info"]
    lines = [f"*Generated from the OpenAPI {spec['openapi']} schema of {info['title']} {info['version']}, "
             "as the server serves it at `/openapi.json` ([download](openapi.json)).*", "", "### Operations", ""]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            lines += _operation(path, method, op)
    lines += ["### Schemas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines)


def include(path: str, root: Path, under: int) -> str:
    """The file without its title line (the page has its own), its headings below the page's level `under`."""
    # the file links from the repository root (`docs/models.md`); the site page stands inside docs/
    text = (root / path).read_text(encoding="utf-8").replace("](docs/", "](")
    if text.startswith("# "):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    levels = [level for _, level in _headings(text)]
    return _demote(text, max(0, under + 1 - min(levels))) if levels else text


GENERATORS = {"cli": cli_reference, "http": http_reference, "include": include}


# mkdocs events -----------------------------------------------------------------------------------------------
def on_files(files, config):
    files.append(File.generated(config, "openapi.json", content=json.dumps(openapi_schema(), ensure_ascii=False,
                                                                           indent=2)))
    return files


def on_page_markdown(markdown: str, page, config, files):
    root = Path(config["config_file_path"]).parent

    def generate(match: re.Match) -> str:
        name, argument = match.groups()
        if name not in GENERATORS or (name == "include") != bool(argument):
            raise ValueError(f"{page.file.src_path}: unknown generated section {match.group(0)!r}")
        if not argument:
            return GENERATORS[name]()
        above = _headings(markdown[: match.start()])
        return include(argument, root, above[-1][1] if above else 1)

    return MARKER.sub(generate, markdown)
