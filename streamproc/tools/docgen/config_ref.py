"""The configuration reference: every key of :class:`Config`, its type, default and meaning.

Walks the pydantic models, so a new field appears in the docs the moment it is added.
A map of sub-models (``models.packs``) gets a section for one entry (``models.packs.<name>``),
a list of them a section ``...[]``, and the built-in entries as a YAML block.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeGuard, Union, get_args, get_origin

import annotated_types as at
import yaml
from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from streamproc.config.base import resolve_secret
from streamproc.config.root import Config

ROOT = "(top level)"
ENTRY = "<name>"


@dataclass(frozen=True)
class Section:
    """One model met at one dotted path (``kafka.security``, ``models.packs.<name>``)."""

    path: str
    model: type[BaseModel]
    note: str = ""


def _is_model(tp: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _members(tp: object) -> list[object]:
    """The alternatives of a union (``X | None``, ``Union[...]``), else ``[tp]``."""
    if get_origin(tp) is Annotated:
        return _members(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        return [m for arg in get_args(tp) for m in _members(arg)]
    return [tp]


def _children(path: str, tp: object) -> Iterator[Section]:
    """The sections a field's type leads to: a sub-model, a map or list of sub-models."""
    models = [m for m in _members(tp) if _is_model(m)]
    for model in models:
        yield Section(path, model, _kind_note(model) if len(models) > 1 else "")
    for member in _members(tp):
        origin, args = get_origin(member), get_args(member)
        if origin is dict and len(args) == 2:
            yield from _children(f"{path}.{ENTRY}", args[1])
        elif origin in (list, tuple) and args:
            yield from _children(f"{path}[]", args[0])


def _kind_note(model: type[BaseModel]) -> str:
    """``kind: nudenet`` for one member of a discriminated union."""
    kind = model.model_fields.get("kind")
    return f"kind: {kind.default}" if kind is not None else model.__name__


def sections() -> list[Section]:
    """Every section of the configuration, depth first, in field order."""
    out: list[Section] = []

    def visit(section: Section) -> None:
        out.append(section)
        for name, field in section.model.model_fields.items():
            path = name if section.path == ROOT else f"{section.path}.{name}"
            for child in _children(path, field.annotation):
                visit(child)

    visit(Section(ROOT, Config))
    return out


def is_secret(tp: object) -> bool:
    """True for ``Secret``/``HiddenSecret`` (or a container of them): never print values."""
    if tp is SecretStr:
        return True
    if getattr(tp, "func", None) is resolve_secret:
        return True
    return any(is_secret(arg) for arg in get_args(tp))


def secret_field(field: FieldInfo) -> bool:
    """True when the field holds secrets (pydantic moves a top-level Annotated to metadata)."""
    return is_secret(field.annotation) or any(is_secret(item) for item in field.metadata)


def is_leaf(field: FieldInfo) -> bool:
    """A field shown as a table row: its type is no sub-model (maps of them are rows too)."""
    return not any(_is_model(m) for m in _members(field.annotation))


def default_value(field: FieldInfo) -> Any:
    """The default as YAML data (factories called), or PydanticUndefined when required."""
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return PydanticUndefined
    else:
        value = field.default
    annotation: Any = field.annotation
    return TypeAdapter(annotation).dump_python(value, mode="json")


def yaml_flow(value: Any) -> str:
    """One-line YAML, as the config file would write the value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _cell_default(field: FieldInfo) -> str:
    value = default_value(field)
    if value is PydanticUndefined:
        return "(required)"
    if secret_field(field) and value not in (None, {}):
        return "(secret)"
    if isinstance(value, dict) and value and _map_of_models(field):
        return "built-in: " + ", ".join(f"`{key}`" for key in value)
    return f"`{yaml_flow(value)}`"


def _map_of_models(field: FieldInfo) -> bool:
    return any(path.endswith(ENTRY) for path in (s.path for s in _children("x", field.annotation)))


def type_name(tp: object) -> str:
    """A readable type: ``int``, ``str | null``, ``list[str]``, ``DEBUG | INFO``, ``secret``."""
    if get_origin(tp) is Annotated:
        return "secret" if is_secret(tp) else type_name(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        return " | ".join(dict.fromkeys(type_name(arg) for arg in get_args(tp)))
    if get_origin(tp) is Literal:
        return " | ".join(str(arg) for arg in get_args(tp))
    if tp is type(None):
        return "null"
    if tp is SecretStr:
        return "secret"
    if get_origin(tp) in (dict, list, tuple):
        args = [("..." if arg is Ellipsis else type_name(arg)) for arg in get_args(tp)]
        return f"{get_origin(tp).__name__}[{', '.join(args)}]"  # type: ignore[union-attr]
    name = getattr(tp, "__name__", str(tp))
    return {"Path": "path", "PosixPath": "path"}.get(name, name)


_BOUNDS = ((at.Ge, "ge", ">="), (at.Gt, "gt", ">"), (at.Le, "le", "<="), (at.Lt, "lt", "<"),
           (at.MinLen, "min_length", "length >="), (at.MaxLen, "max_length", "length <="))


def constraints(field: FieldInfo) -> str:
    """``>= 0, <= 65535`` and patterns, from the field's pydantic metadata."""
    out = []
    for item in field.metadata:
        for cls, attr, sign in _BOUNDS:
            if isinstance(item, cls):
                out.append(f"{sign} {getattr(item, attr)}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            out.append(f"matches `{pattern}`")
    return ", ".join(out)


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(name: str, field: FieldInfo) -> str:
    kind = "secret" if secret_field(field) and not is_secret(field.annotation) else (
        type_name(field.annotation))
    bounds = constraints(field)
    kind = f"{kind}, {bounds}" if bounds else kind
    return (f"| `{name}` | {_escape(kind)} | {_cell_default(field)} | "
            f"{_escape(field.description or '')} |")


def _built_ins(section: Section) -> Iterator[str]:
    """The built-in entries of every map-of-models field, as a YAML block."""
    for name, field in section.model.model_fields.items():
        value = default_value(field)
        if isinstance(value, dict) and value and _map_of_models(field):
            key = name if section.path == ROOT else f"{section.path}.{name}"
            block = yaml.safe_dump({name: value}, sort_keys=False, width=100)
            yield f"\n\nBuilt-in entries of `{key}`:\n\n```yaml\n{block}```\n"


def render(section: Section) -> str:
    """One section: heading, the model's docstring line, the table of its plain fields."""
    title = f"### `{section.path}`" if section.path != ROOT else f"### {ROOT}"
    if section.note:
        title += f" ({section.note})"
    doc = (section.model.__doc__ or "").strip().split("\n\n")[0]
    lines = [title, "", _escape(doc), ""]
    rows = [_row(n, f) for n, f in section.model.model_fields.items() if is_leaf(f)]
    if rows:
        lines += ["| key | type | default | description |", "| --- | --- | --- | --- |", *rows]
    return "\n".join(lines) + "".join(_built_ins(section)) + "\n"


def reference() -> str:
    """The whole configuration reference, as Markdown (``<!-- gen:config -->``)."""
    return "\n".join(render(section) for section in sections())
