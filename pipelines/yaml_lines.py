"""Load YAML and remember the line of every key and list item.

PyYAML's composer keeps each node's position; this walks the node tree once and
returns the plain data together with a map from path to line, so validation errors
can name the line they are about. Duplicate keys, which PyYAML silently lets win,
are errors here; merge keys (``<<: *anchor``) work as in YAML 1.1.

The text may be hostile (a pushed ``.shipway.yml``, a lint request): nesting deeper
than :data:`MAX_DEPTH` and aliases that expand to more than :data:`MAX_VALUES`
values ("billion laughs", or an alias of its own ancestor) are errors, not a
RecursionError, a hang or a blown memory.
"""

from __future__ import annotations

from typing import Any

import yaml

from pipelines.errors import SpecIssue

Path = tuple[str | int, ...]

MAX_DEPTH = 64  # a pipeline file nests about 6 levels
MAX_VALUES = 100_000  # keys, items and scalars, counted with aliases expanded


class YamlProblem(Exception):
    def __init__(self, issue: SpecIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


class _DepthLimitedLoader(yaml.SafeLoader):
    """Composes no deeper than the walk accepts: deeper nesting is refused as it is
    read, before PyYAML's recursive composer (with its scanner looking ahead past
    every bracket still open) spends a second on 5,000 of them."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:  # the root is at depth 1, path ()
                where = self.get_mark().line + 1  # where reading got to
                raise YamlProblem(SpecIssue(where, "", f"nested deeper than {MAX_DEPTH} levels"))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_with_lines(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document; raise :class:`YamlProblem` naming the line."""
    lines: dict[Path, int] = {}
    try:
        # The reader refuses characters YAML does not allow already here.
        loader = _DepthLimitedLoader(text)
    except yaml.YAMLError as exc:
        raise YamlProblem(SpecIssue(None, "", f"invalid YAML: {exc}")) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        lines[()] = node.start_mark.line + 1
        return _walk(loader, node, (), lines), lines
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise YamlProblem(
            SpecIssue(None, "", f"invalid YAML: nested deeper than {MAX_DEPTH} levels")
        ) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlProblem(SpecIssue(line, "", f"invalid YAML: {exc.problem}")) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(SpecIssue(None, "", f"invalid YAML: {exc}")) from exc
    finally:
        loader.dispose()


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    if len(path) > MAX_DEPTH:
        where = node.start_mark.line + 1
        raise YamlProblem(SpecIssue(where, "", f"nested deeper than {MAX_DEPTH} levels"))
    if len(lines) > MAX_VALUES:
        where = node.start_mark.line + 1
        problem = f"more than {MAX_VALUES} values once aliases are expanded"
        raise YamlProblem(SpecIssue(where, "", problem))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise YamlProblem(
                    SpecIssue(
                        key_node.start_mark.line + 1,
                        format_path((*path, str(key))),
                        f"duplicate key (first at line {seen[key]})",
                    )
                )
            seen[key] = key_node.start_mark.line + 1
        loader.flatten_mapping(node)  # expands "<<" merge keys in place
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool | float) and key is not None:
                raise YamlProblem(
                    SpecIssue(key_node.start_mark.line + 1, format_path(path), "keys must be text")
                )
            child = (*path, str(key))
            lines[child] = key_node.start_mark.line + 1
            mapping[str(key)] = _walk(loader, value_node, child, lines)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            child = (*path, index)
            lines[child] = item_node.start_mark.line + 1
            items.append(_walk(loader, item_node, child, lines))
        return items
    return loader.construct_object(node, deep=True)


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def line_of(path: Path, lines: dict[Path, int]) -> int | None:
    """The line of ``path``, or of its nearest ancestor that exists in the file."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None
