"""Render a resource's Jinja2 template. Pure apart from reading the template file.

The template sees:

- ``services``: the services (``confd.services.Service``) sorted by name, after
  the empty grace; each has ``name``, ``app``, ``env``, ``upstream``, ``servers``
  (``address``, ``weight``), ``hosts`` and ``path``;
- ``kv``: every key under the resource's prefixes, as text;
- ``vars``: the resource's ``[vars]`` table.

Undefined names are errors (StrictUndefined): a typo fails the render, and the
file in place stays, instead of rendering an empty string into nginx's config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import jinja2

from confd.errors import RenderError
from confd.resources import Resource
from confd.services import Service


def under(kv: Mapping[str, str], prefixes: Iterable[str]) -> dict[str, str]:
    """The keys of ``kv`` under any of ``prefixes``, sorted."""
    wanted = tuple(prefixes)
    return {key: kv[key] for key in sorted(kv) if key.startswith(wanted)}


class Template:
    """A resource's template; Jinja re-reads the file when it changes on disk."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self._environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(resource.src.parent)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - nginx configuration, not HTML; values are validated
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
        )

    def render(self, services: Sequence[Service], kv: Mapping[str, str]) -> str:
        name = self.resource.src.name
        try:
            template = self._environment.get_template(name)
            return template.render(
                services=list(services),
                kv=under(kv, self.resource.keys),
                vars=dict(self.resource.variables),
            )
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"{name}: line {exc.lineno}: {exc.message}") from exc
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError) as exc:
            raise RenderError(f"{name}: {exc}") from exc
