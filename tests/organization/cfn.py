"""CloudFormation templates rendered for one account and region: parameters, pseudo parameters,
conditions and the intrinsics the templates use (!Ref, !Sub, !If, !Equals, !Not, !GetAtt, !Join), so that
tests read the policies, trust documents and event patterns CloudFormation would create."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
NO_VALUE = object()


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {f"Fn::{suffix}" if suffix not in ("Ref", "Condition") else suffix: value}


_Loader.add_multi_constructor("!", _tag)


def load(name: str) -> dict[str, Any]:
    return copy.deepcopy(_parsed(name))


@functools.lru_cache(maxsize=8)
def _parsed(name: str) -> dict[str, Any]:
    return yaml.load((REPO / name).read_text(), Loader=_Loader)  # noqa: S506  # nosec B506 - SafeLoader subclass


class Rendered:
    def __init__(self, name: str, parameters: dict[str, Any], account: str, region: str, stack: str = "keyguard"):
        self.doc = load(name)
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::StackName": stack,
            "AWS::NoValue": NO_VALUE,
        }
        self.params: dict[str, Any] = {}
        for key, spec in self.doc.get("Parameters", {}).items():
            value = parameters.get(key, spec.get("Default"))
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            self.params[key] = value
        self.conditions: dict[str, bool] = {}
        for key, expr in self.doc.get("Conditions", {}).items():
            self.conditions[key] = bool(self.value(expr))

    def resources(self, kind: str | None = None) -> dict[str, dict[str, Any]]:
        out = {}
        for lid, res in self.doc["Resources"].items():
            if "Condition" in res and not self.conditions[res["Condition"]]:
                continue
            if kind is None or res["Type"] == kind:
                out[lid] = self.value(res.get("Properties", {}))
        return out

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(v) for v in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((tag, arg),) = node.items()
            if tag == "Ref":
                if arg in self.pseudo:
                    return self.pseudo[arg]
                if arg in self.params:
                    return self.params[arg]
                return f"{self.pseudo['AWS::StackName']}-{arg}"  # a resource's physical id
            if tag == "Condition":
                return self.conditions[arg]
            if tag == "Fn::If":
                cond, yes, no = arg
                return self.value(yes if self.conditions[cond] else no)
            if tag == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return a == b
            if tag == "Fn::Not":
                return not self.value(arg[0])
            if tag == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
                return re.sub(
                    r"\$\{([^}]+)\}", lambda m: str(names.get(m.group(1)) or self.value({"Ref": m.group(1)})), text
                )
            if tag == "Fn::GetAtt":
                lid = arg.split(".")[0] if isinstance(arg, str) else arg[0]
                return f"arn:aws:::{self.pseudo['AWS::AccountId']}:{lid}"
            if tag == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.value(items))
        return {k: self.value(v) for k, v in node.items() if self.value(v) is not NO_VALUE}
