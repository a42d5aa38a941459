"""YAML read as DVC reads it: the YAML 1.2 core schema, on PyYAML's safe loader.

PyYAML implements YAML 1.1, where ``yes``, ``no``, ``on`` and ``off`` are booleans, ``1:20`` is 80 (base 60),
``012`` is octal and ``1e-4`` is a string. DVC reads params.yaml with ruamel.yaml in YAML 1.2, where those are
the strings ``yes``, ``no``, ``on``, ``off`` and ``1:20``, the integer 12 and the float 0.0001; and
``dvc exp run -S key=value`` rewrites params.yaml dropping the quotes YAML 1.1 needs, so the Bohra config's
``label_map: {hate: "yes"}`` comes back as ``{hate: yes}``, which PyYAML would read as ``{hate: True}``. Every
YAML file cmmerge reads goes through :func:`load`, so a stage sees the values DVC tracks for it.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float"))


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema booleans, integers and floats."""


# a fresh table without 1.1's bool/int/float rules (assigning it keeps SafeLoader's own table untouched)
Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag not in (_BOOL, _INT, _FLOAT)]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
# int before float, so that "12" is an int; digits may be grouped with "_" (1_000), as ruamel.yaml reads them
Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    if text[:2] in ("0o", "0x"):
        return int(text, 0)
    return int(text, 10)  # "012" is 12 in YAML 1.2, not octal


Loader.add_constructor(_INT, _construct_int)


def load(text: str) -> Any:
    """Parse one YAML document as DVC does (YAML 1.2 core schema)."""
    return yaml.load(text, Loader=Loader)


class Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting a string that either schema would read as something else: ``yes`` (a
    boolean in YAML 1.1, which PyYAML users read) and ``1e-4`` (a float in YAML 1.2, which DVC reads)."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        if _RESOLVER.resolve(yaml.ScalarNode, data, (True, False)) != "tag:yaml.org,2002:str":
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return super().represent_str(data)


Dumper.add_representer(str, Dumper.represent_str)
_RESOLVER = Loader("")


def dump(data: Any, **options: Any) -> str:
    """YAML text that PyYAML (1.1) and DVC (1.2) both read back as ``data``."""
    return yaml.dump(data, Dumper=Dumper, **options)
