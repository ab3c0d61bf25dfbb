"""`load_yaml`: PyYAML's safe loader, reading numbers as a user writes them and refusing repeated keys.

Used for every YAML file topoloc reads (a run's ``config.yaml``, a recipe and its ``--set`` values).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import yaml

__all__ = ["load_yaml"]


class _NumberLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``5e-5`` and ``1e3`` as numbers (YAML 1.1 wants ``5.0e-5``)."""


_NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _number_or_text(construct: Callable[[yaml.SafeLoader, yaml.ScalarNode], Any]):
    """YAML 1.1 reads ``1:30`` as 90 (base 60): kept as the text it is, so that a number field refuses it; and
    ``010`` as 8 (octal): read as the decimal 10 it looks like (YAML 1.2's reading). ``0x10`` stays hexadecimal."""
    def read(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        if ":" in node.value:
            return node.value
        if re.fullmatch(r"[-+]?0[0-9_]+", node.value):  # leading zeros, not 0x / 0b / 0o
            return int(node.value.replace("_", ""), 10)
        return construct(loader, node)
    return read


def _mapping_without_repeats(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    """A mapping whose keys are all different: YAML keeps the last of two equal keys, dropping the first."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is there twice (lines {seen[key]} and {line}): the first would be "
                f"dropped without a word", key_node.start_mark)
        seen[key] = line
    return loader.construct_mapping(node, deep=True)


_NumberLoader.add_constructor("tag:yaml.org,2002:int", _number_or_text(yaml.SafeLoader.construct_yaml_int))
_NumberLoader.add_constructor("tag:yaml.org,2002:float", _number_or_text(yaml.SafeLoader.construct_yaml_float))
_NumberLoader.add_constructor("tag:yaml.org,2002:map", _mapping_without_repeats)


def load_yaml(stream: Any) -> Any:
    r"""``yaml.safe_load`` that reads numbers as a user writes them: ``5e-5`` is a float, not a string; a
    base-60 number of YAML 1.1 (``1:30``) stays text, an octal one (``010``) is decimal, and a key given twice in
    one mapping is an error.

    Example:
        >>> load_yaml("lr: 5e-5\nsteps: 1e3\nname: 5e\nepochs: 1:30\nseed: 010")
        {'lr': 5e-05, 'steps': 1000.0, 'name': '5e', 'epochs': '1:30', 'seed': 10}
    """
    return yaml.load(stream, Loader=_NumberLoader)  # noqa: S506 - a SafeLoader subclass
