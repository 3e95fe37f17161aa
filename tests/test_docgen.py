"""The generated reference pages: configuration keys, CLI help, the operations table."""

from __future__ import annotations

import argparse
import re
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import botocore.session
import pytest
import yaml
from pydantic import BaseModel, Field, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from streamproc import cli
from streamproc.config.base import Secret, Section
from streamproc.config.root import Config
from streamproc.tools.docgen import cli_help, config_ref, operations

REPO = Path(__file__).resolve().parent.parent
WRITE = "run python -m streamproc.tools.docgen.operations --write README.md"


# -- configuration ---------------------------------------------------------------------------

def _models_in(tp: Any) -> list[tuple[str, type[BaseModel]]]:
    """(path suffix, model) for the sub-models a field type holds: direct, in a map, a list."""
    if get_origin(tp) is Annotated:
        return _models_in(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        found = [hit for arg in get_args(tp) for hit in _models_in(arg)]
        if len(found) > 1:  # a discriminated union: one section per kind
            return [(f"{s} (kind: {m.model_fields['kind'].default})", m) for s, m in found]
        return found
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [("", tp)]
    if get_origin(tp) is dict:
        return [(".<name>" + s, m) for s, m in _models_in(get_args(tp)[1])]
    if get_origin(tp) in (list, tuple):
        return [("[]" + s, m) for s, m in _models_in(get_args(tp)[0])]
    return []


def _fields(model: type[BaseModel], path: str = "") -> list[tuple[str, str, FieldInfo]]:
    """(section path, key, field) for every field, walking model_fields recursively."""
    out = []
    for name, field in model.model_fields.items():
        out.append((path or config_ref.ROOT, name, field))
        dotted = f"{path}.{name}" if path else name
        for suffix, sub in _models_in(field.annotation):
            out += _fields(sub, dotted + suffix)
    return out


def _tables(markdown: str) -> dict[str, dict[str, str]]:
    """Section path -> key -> its table row, parsed from the reference."""
    out: dict[str, dict[str, str]] = {}
    for chunk in markdown.split("\n### ")[0:]:
        head, _, body = chunk.removeprefix("### ").partition("\n")
        path = head.replace("`", "")
        rows = out.setdefault(path, {})
        for line in body.splitlines():
            match = re.match(r"\| `([^`]+)` \|", line)
            if match:
                rows[match[1]] = line
    return out


def _cells(row: str) -> list[str]:
    """A table row's cells: split on pipes outside code spans and not escaped."""
    return [c.strip() for c in re.findall(r"(?:`[^`]*`|\\\||[^|`])+", row.strip().strip("|"))]


def _dumped_default(field: FieldInfo) -> Any:
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    return TypeAdapter(field.annotation).dump_python(value, mode="json")


def _built_in_block(markdown: str, key: str) -> Any:
    match = re.search(rf"Built-in entries of `{re.escape(key)}`:\n\n```yaml\n(.*?)```",
                      markdown, re.S)
    assert match, f"no built-in block for {key}"
    return yaml.safe_load(match[1])


def test_every_config_key_appears_with_its_default() -> None:
    markdown = config_ref.reference()
    tables = _tables(markdown)
    checked = 0
    for path, key, field in _fields(Config):
        if _models_in(field.annotation) and get_origin(field.annotation) not in (dict, list):
            continue  # a sub-section: test_every_config_section_is_a_heading
        row = tables[path].get(key)
        assert row is not None, f"{path}: {key} missing from the reference"
        if field.default is PydanticUndefined and field.default_factory is None:
            assert "| (required) |" in row, row
        elif get_origin(field.annotation) is dict and _models_in(field.annotation) and (
                _dumped_default(field)):
            dotted = key if path == config_ref.ROOT else f"{path}.{key}"
            assert _built_in_block(markdown, dotted) == {key: _dumped_default(field)}
            assert all(f"`{name}`" in row for name in _dumped_default(field)), row
        else:
            cell = _cells(row)[2]
            assert cell.startswith("`"), row
            assert yaml.safe_load(cell.strip("`")) == _dumped_default(field), (path, key, row)
        checked += 1
    assert checked > 150  # the walk reached the nested sections, not just the top level


def test_every_config_section_is_a_heading() -> None:
    tables = _tables(config_ref.reference())
    for path, key, field in _fields(Config):
        dotted = key if path == config_ref.ROOT else f"{path}.{key}"
        for suffix, _ in _models_in(field.annotation):
            assert dotted + suffix in tables, dotted + suffix


def test_every_config_field_has_a_description() -> None:
    missing: list[str] = []
    for path, key, field in _fields(Config):
        if _models_in(field.annotation) and get_origin(field.annotation) not in (dict, list):
            continue  # a sub-section: its class docstring is shown under its heading
        if not (field.description or "").strip():
            missing.append(key if path == config_ref.ROOT else f"{path}.{key}")
    missing = list(dict.fromkeys(missing))  # union members share their fields
    assert not missing, f"fields without Field(description=...): {missing}"


def test_secret_defaults_are_never_shown() -> None:
    class Demo(Section):
        """A section with a secret default."""

        token: Secret = Field("hunter2-value", description="a secret")
        name: str = Field("visible-name", description="not a secret")

    text = config_ref.render(config_ref.Section("demo", Demo))
    assert "hunter2" not in text
    assert "| `token` | secret | (secret) |" in text
    assert "`visible-name`" in text


def test_types_are_readable() -> None:
    tables = _tables(config_ref.reference())
    assert "| int, >= 0, <= 65535 | `8085` |" in tables["server"]["port"]
    assert "| int \\| null, >= 1 | `null` |" in tables["server"]["max_body_reads_per_key"]
    assert "| DEBUG \\| INFO \\| WARNING \\| ERROR | `INFO` |" in tables["(top level)"]["log_level"]
    assert "| list[str] |" in tables["inputs"]["schemes"]
    assert "| secret \\| null |" in tables["objects"]["s3_secret_access_key"]


def test_shipped_config_names_every_fixed_key() -> None:
    shipped = yaml.safe_load((REPO / "configs" / "streamproc.yaml").read_text(encoding="utf-8"))
    absent = []
    for path, key, _ in _fields(Config):
        if "<name>" in path or "[]" in path:
            continue  # entries of a map or list: the file shows the built-in ones
        node = shipped
        for part in ([] if path == config_ref.ROOT else path.split(".")):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if not isinstance(node, dict) or key not in node:
            absent.append(key if path == config_ref.ROOT else f"{path}.{key}")
    assert not absent, f"configs/streamproc.yaml does not list: {absent}"


# -- command line ----------------------------------------------------------------------------

def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    if parser._subparsers is not None:
        for action in parser._subparsers._group_actions:
            for name, child in getattr(action, "choices", {}).items():
                out += _commands(child, (*path, name))
    return out


def _blocks(markdown: str) -> dict[str, str]:
    return dict(re.findall(r"### (streamproc[^\n]*)\n\n```text\n(.*?)\n```", markdown, re.S))


def test_every_subcommand_has_its_help(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _blocks(cli_help.help_texts())
    commands = _commands(cli._parser())
    assert {("models", "pull"), ("models", "list"), ("serve",)} <= set(commands)
    assert list(blocks) == [" ".join(("streamproc", *c)) for c in commands]
    monkeypatch.setenv("COLUMNS", "100")
    for command in commands:
        with pytest.raises(SystemExit):
            cli.main([*command, "--help"])
        printed = capsys.readouterr().out
        assert blocks[" ".join(("streamproc", *command))] == printed.rstrip(), command


# -- operations ------------------------------------------------------------------------------

def _rows(markdown: str) -> list[tuple[str, list[list[str]]]]:
    """(link target, [served, deviates, not served]) for every area row."""
    out = []
    for line in markdown.splitlines():
        match = re.match(r"\| \[[^]]+\]\(([^)]+)\) \|(.*)\|$", line)
        if match:
            cells = [[op.strip() for op in cell.split(",") if op.strip()]
                     for cell in match[2].split("|")]
            out.append((match[1], cells))
    return out


def test_every_operation_appears_once() -> None:
    rows = _rows(operations.table())
    listed = [op for _, cells in rows for cell in cells for op in cell]
    names = botocore.session.get_session().get_service_model("rekognition").operation_names
    assert sorted(listed) == sorted(names)


def test_the_table_shows_served_and_deviating_operations_as_such() -> None:
    rows = _rows(operations.table())
    served = {op for _, cells in rows for op in cells[0] + cells[1]}
    assert served == operations.served_operations()
    deviates = {op for _, cells in rows for op in cells[1]}
    assert deviates == set(operations.DEVIATIONS)


def test_deviations_are_served_and_listed() -> None:
    text = operations.table()
    assert set(operations.DEVIATIONS) <= operations.served_operations()
    for op, (note, _) in operations.DEVIATIONS.items():
        assert f"- **{op}**: {note}" in text.split("Deviations:")[1]


def test_linked_pages_exist() -> None:
    text = operations.table()
    pages = re.findall(r"\]\(([^)]+\.md)\)", text)
    assert pages
    for page in pages:
        assert (REPO / "docs" / page).is_file(), page
    assert re.findall(r"\]\((docs/[^)]+)\)", operations.readme_section())


def test_write_replaces_only_the_marked_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{operations.START}\nstale\n{operations.END}\nrest\n")
    assert operations.main(["--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(f"intro\n{operations.START}\n")
    assert text.endswith(f"{operations.END}\nrest\n")
    assert "stale" not in text
    assert operations.current_section(text) == operations.readme_section()
    with pytest.raises(ValueError, match="markers"):
        operations.replace_section("no markers", "x")


def test_readme_operations_section_is_current() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    try:
        section = operations.current_section(text)
    except ValueError:
        pytest.fail(f"README.md has no operations markers; add them, then {WRITE}")
    assert section == operations.readme_section(), f"README.md's operations table is stale: {WRITE}"
