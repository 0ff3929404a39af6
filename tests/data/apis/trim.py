#!/usr/bin/env python3
"""Reduces a public OpenAPI description (JSON, OpenAPI 3.x or Swagger 2.0) to what
routemeter's route tests read: the server base path, every path with its operations, and
each operation's path parameters (name and schema: type, format, enum). The result is still
a valid OpenAPI document of the same version, small enough to commit.

    python3 tests/data/apis/trim.py FULL.json > tests/data/apis/NAME.json
"""
import json
import sys

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def deref(doc, node, depth=0):
    while isinstance(node, dict) and "$ref" in node and depth < 16:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        target = doc
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        node, depth = target, depth + 1
    return node if isinstance(node, dict) else {}


def schema_of(doc, param):
    raw = param.get("schema") if "schema" in param else {k: param[k] for k in ("type", "format", "enum") if k in param}
    schema = deref(doc, raw or {})
    if "oneOf" in schema or "anyOf" in schema:
        options = [deref(doc, s) for s in schema.get("oneOf", schema.get("anyOf", []))]
        types = {s.get("type") for s in options}
        schema = {"type": "integer"} if types <= {"integer", "number"} else {"type": "string"}
    out = {k: schema[k] for k in ("type", "format") if isinstance(schema.get(k), str)}
    if isinstance(schema.get("enum"), list):
        out["enum"] = [str(v) for v in schema["enum"][:50]]
    return out


def path_params(doc, params):
    out = []
    for p in params or []:
        p = deref(doc, p)
        if p.get("in") == "path" and isinstance(p.get("name"), str):
            entry = {"name": p["name"], "in": "path", "required": True}
            schema = schema_of(doc, p)
            if doc.get("swagger"):
                entry.update(schema)
                entry.setdefault("type", "string")
            else:
                entry["schema"] = schema or {"type": "string"}
            out.append(entry)
    return out


def trim(doc):
    out = {k: doc[k] for k in ("openapi", "swagger") if k in doc}
    out["info"] = {"title": doc.get("info", {}).get("title", ""), "version": doc.get("info", {}).get("version", "")}
    if doc.get("swagger"):
        for k in ("host", "basePath"):
            if k in doc:
                out[k] = doc[k]
    elif doc.get("servers"):
        server = doc["servers"][0]
        out["servers"] = [{k: server[k] for k in ("url", "variables") if k in server}]
    paths = {}
    for path, item in doc.get("paths", {}).items():
        if not path.startswith("/") or not isinstance(item, dict):
            continue
        common = path_params(doc, item.get("parameters"))
        ops = {}
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            names = {p["name"] for p in path_params(doc, op.get("parameters"))}
            params = path_params(doc, op.get("parameters")) + [p for p in common if p["name"] not in names]
            ops[method] = {"parameters": params} if params else {}
            ops[method]["responses"] = {"200": {"description": "ok"}}
        if ops:
            paths[path] = ops
    out["paths"] = paths
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    json.dump(trim(doc), sys.stdout, separators=(",", ":"), sort_keys=False)
    sys.stdout.write("\n")
