"""YAML text -> its data and node tree in one pass (libyaml where installed), and the line of a key in that tree."""

from __future__ import annotations

import weakref
from typing import Protocol

import yaml

Loc = tuple[str | int, ...]  # a key path into a YAML document: mapping keys and list positions, as pydantic gives them
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser: a 5 MB spec in ~1 s
# mapping node -> {key: (key node, value node)}: a key's line in O(1), however many keys a mapping has
_INDEX: weakref.WeakKeyDictionary[yaml.MappingNode, dict[str, tuple[yaml.Node, yaml.Node]]] = (
    weakref.WeakKeyDictionary())


class At(Protocol):
    """Where a key of a spec is written: `at("train", "max_seq_length")` -> 'spec.yaml:12' (each caller's form)."""

    def __call__(self, *loc: str | int) -> str: ...


def parse(text: str) -> tuple[object, yaml.Node | None]:
    """(data, root node) of a YAML document, as yaml.safe_load and yaml.compose give them; raises yaml.YAMLError."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def compose(text: str) -> yaml.Node | None:
    """The node tree of a YAML document (for line numbers)."""
    loader = _Loader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def _entries(node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    index = _INDEX.get(node)
    if index is None:
        index = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                index.setdefault(k.value, (k, v))  # the first of duplicate keys, as before
        _INDEX[node] = index
    return index


def line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The 1-based line of the YAML node at `loc` (or its deepest existing parent)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = _entries(node).get(part) if isinstance(part, str) else None  # a scalar node's value is text
            if found is None:
                return line
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line
