"""The topic's JSON document against its published schema (docs/message.schema.json).

For the test suites and for subscribers who want to check what they receive: `problems(doc)` lists what is
wrong. jsonschema is a development dependency (it is not shipped to Lambda, which never validates its own
output at run time).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "message.schema.json"


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def problems(doc: Any) -> list[str]:
    """Every way `doc` breaks the schema (empty when it conforms)."""
    from jsonschema.exceptions import best_match

    out = []
    for error in _validator().iter_errors(doc):
        if error.context:  # oneOf: say why it is not the kind it looks like
            kind = _kind(doc)
            mine = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == kind]
            error = best_match(mine or error.context)
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        out.append(f"{where}: {error.message[:200]}")
    return out


def _kind(doc: Any) -> int:
    """The index in the schema's oneOf of the kind the document claims to be."""
    if not isinstance(doc, dict):
        return 0
    if doc.get("kind") == "investigation":
        return 1
    if "kind" in doc:
        return 4
    if "releasedBy" in doc:
        return 2
    if "generatedAt" in doc:
        return 3
    return 0


def machine_documents(message: dict[str, Any]) -> list[Any]:
    """The JSON documents inside sns.publish arguments built by keyguard.notify.package."""
    if message.get("MessageStructure") != "json":
        return []
    parts = json.loads(message["Message"])
    return [json.loads(parts[p]) for p in ("sqs", "lambda", "https", "http", "email-json") if p in parts]
