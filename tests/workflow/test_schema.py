"""workflow/schemas/config.schema.yaml and config.yaml document each other: every key typed, described,
defaulted, strict, commented, and every scale file valid."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml
from _pipeline import DEFAULT_CONFIG, PAPER_CONFIG, REPO, TINY_CONFIG

SCHEMA_FILE = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_FILE.read_text())
SCALES = sorted((REPO / "workflow" / "scales").glob("*.yaml"))
PLACEHOLDER = "x-vbmi-placeholder"


def _properties(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for key, sub in schema.get("properties", {}).items():
        yield (*path, key), sub
        yield from _properties(sub, (*path, key))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _leaves(cfg: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def test_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_key_has_type_description_default() -> None:
    missing = [
        f"{'.'.join(p)}: {attr}"
        for p, sub in _properties(SCHEMA)
        for attr in ("type", "description", "default")
        if attr not in sub
    ]
    assert not missing, missing


def test_every_default_is_valid_for_its_key() -> None:
    for path, sub in _properties(SCHEMA):
        # $defs travel along so that a key's `$ref: "#/$defs/..."` resolves in its own subschema
        jsonschema.validate(sub["default"], {**{k: v for k, v in sub.items() if k != "default"}, "$defs": SCHEMA.get("$defs", {})})


def test_every_object_forbids_unknown_keys() -> None:
    loose = [
        ".".join(p)
        for p, sub in [((), SCHEMA), *_properties(SCHEMA)]
        if sub.get("type") == "object" and sub.get("additionalProperties") is not False and not sub.get(PLACEHOLDER)
    ]
    assert not loose, f"objects without additionalProperties: false: {loose}"


def test_no_placeholder_sections_left() -> None:
    placeholders = [".".join(p) for p, sub in _properties(SCHEMA) if sub.get(PLACEHOLDER)]
    half_done = [".".join(p) for p, sub in _properties(SCHEMA) if sub.get(PLACEHOLDER) and sub.get("properties")]
    assert not half_done, f"{half_done}: declare additionalProperties: false and drop {PLACEHOLDER}"
    if placeholders:
        pytest.xfail(f"stage sections not yet specified by their owners: {placeholders}")


@pytest.mark.parametrize("scale", [None, *SCALES], ids=["config.yaml", *(p.stem for p in SCALES)])
def test_config_and_every_scale_validate(scale) -> None:
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
    if scale is not None:
        layer = yaml.safe_load(scale.read_text()) or {}
        assert isinstance(layer.get("scale"), str), f"{scale.name} must set `scale:` to its own name"
        assert layer["scale"] == scale.stem
        cfg = _merge(cfg, layer)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(cfg)]
    assert not errors, errors


def test_default_config_lists_every_key_with_the_schema_default() -> None:
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert cfg["scale"] == "default"
    for path, sub in _properties(SCHEMA):
        node: Any = cfg
        for key in path:
            assert isinstance(node, dict) and key in node, f"config.yaml lacks {'.'.join(path)}"
            node = node[key]
        if sub.get("type") != "object":
            assert node == sub["default"], f"{'.'.join(path)}: config.yaml has {node!r}, schema default {sub['default']!r}"


def test_every_config_key_is_commented() -> None:
    """Each key line in config.yaml has a comment beside it or directly above it (why its default)."""
    lines = DEFAULT_CONFIG.read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z_][\w-]*:", line) and "#" not in line:
            above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            if not above.startswith("#"):
                uncommented.append(line.strip())
    assert not uncommented, uncommented


# ---- trained bound entries: alpha exactly for the interpolated bounds ------------------------------

BOUND_ENTRY = {**SCHEMA["$defs"]["bound_entry"], "$defs": SCHEMA["$defs"]}


def _entry_errors(entry: dict[str, Any]) -> list[str]:
    return [e.schema.get("x-vbmi-message", e.message) for e in jsonschema.Draft202012Validator(BOUND_ENTRY).iter_errors(entry)]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"bound": "interpolated", "alpha": 0.01}, None),
        ({"bound": "interpolated_linear", "alpha": 0.5}, None),
        ({"bound": "nce"}, None),
        ({"bound": "interpolated"}, "needs an alpha"),
        ({"bound": "interpolated_product"}, "needs an alpha"),
        ({"bound": "nce", "alpha": 0.5}, "takes no alpha"),
        ({"bound": "js", "alpha": 0.0}, "takes no alpha"),
    ],
)
def test_bound_entries_take_alpha_exactly_when_interpolated(entry: dict[str, Any], problem: str | None) -> None:
    errors = _entry_errors(entry)
    if problem is None:
        assert errors == []
    else:
        assert len(errors) == 1 and problem in errors[0], errors


def test_every_bound_list_uses_the_one_entry_schema() -> None:
    lists = [p for p, sub in _properties(SCHEMA) if p[-1].endswith("bounds") and sub.get("items", {}).get("type") == "object"]
    assert not lists, f"{lists}: use items: {{$ref: '#/$defs/bound_entry'}}"
    refs = [p for p, sub in _properties(SCHEMA) if sub.get("items") == {"$ref": "#/$defs/bound_entry"}]
    assert {".".join(p) for p in refs} >= {"training.bounds", "sweep.bounds", "sweep.interpolation_bounds"}


def test_alpha_rule_agrees_with_run_planning() -> None:
    """The schema's interpolated bounds are exactly the trainable bounds that take alpha (torch-free)."""
    from vbmi.experiments.plan import TRAINABLE_BOUNDS

    entry = SCHEMA["$defs"]["bound_entry"]
    needs_alpha = set(entry["if"]["properties"]["bound"]["enum"])
    listed = set(entry["properties"]["bound"]["enum"])
    assert listed <= set(TRAINABLE_BOUNDS)
    assert needs_alpha == {b for b in listed if TRAINABLE_BOUNDS[b].takes_alpha}
