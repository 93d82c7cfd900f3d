"""What the worker says about style packs: GET /v1/packs, the submit check, the schema.

Standard library only (the route and the schema are built without torch).
"""

from __future__ import annotations

from typing import Any

from acestep_core.errors import FieldProblem
from acestep_core.packs.base import check_pack_base
from acestep_core.packs.manifest import MAX_SCALE, PACK_NAME_PATTERN, PackError
from acestep_core.packs.store import PackStore


def _store(backend) -> PackStore:
    return PackStore(getattr(backend, "packs_folder", None))


def packs_listing(backend) -> dict[str, Any]:
    """Every installed pack, each with whether this worker's model can use it and why not."""
    from acestep_core.packs import SKETCH_REFUSAL

    info = backend.describe()
    packs = []
    for pack in _store(backend).list():
        reason = None
        if not info.supports_styles:
            reason = SKETCH_REFUSAL if backend.name == "sketch" else f"the {backend.name} backend cannot use style packs"
        else:
            try:
                check_pack_base(pack, info.model_path)
            except PackError as exc:
                reason = str(exc)
        packs.append({**pack.to_dict(), "usable": reason is None, "reason": reason})
    return {"packs": packs, "supports_styles": info.supports_styles, "model": info.model_path}


def style_problems(request, backend) -> list[FieldProblem]:
    """422 sentences for a styled request this worker cannot run (checked at submit)."""
    if request.style is None:
        return []
    from acestep_core.packs import SKETCH_REFUSAL

    info = backend.describe()
    if not info.supports_styles:
        return [FieldProblem("style", SKETCH_REFUSAL.replace("leave --style out", "leave style empty (null)"))]
    try:
        check_pack_base(_store(backend).get(request.style), info.model_path)
    except PackError as exc:
        return [FieldProblem("style", str(exc))]
    return []


def constrain_request_schema(schema: dict, supports_styles: bool) -> None:
    """style and style_scale in GenerationRequest's schema. Not said there (422 all the
    same): whether a pack of that name is installed and made for this model."""
    properties = schema["properties"]
    if not supports_styles:  # no style, so style_scale can only be its default
        properties["style"] = {"type": "null", "default": None, "title": "Style"}
        properties["style_scale"] = {"const": 1, "default": 1, "title": "Style Scale"}
        return
    for branch in properties["style"].get("anyOf", [properties["style"]]):
        if branch.get("type") == "string":
            branch["pattern"] = PACK_NAME_PATTERN
    properties["style_scale"].update({"minimum": 0, "maximum": MAX_SCALE})
    # style_scale only with a style (GenerationRequest.problems()).
    schema.setdefault("allOf", []).append(
        {"if": {"not": {"required": ["style"], "properties": {"style": {"type": "string"}}}},
         "then": {"properties": {"style_scale": {"const": 1}}}})


PACKS_SCHEMA = {"type": "object", "required": ["packs", "supports_styles", "model"], "properties": {
    "packs": {"type": "array", "items": {"type": "object", "required": ["name", "licence", "hash", "usable"],
                                         "properties": {"name": {"type": "string"}, "licence": {"type": "string"},
                                                        "hash": {"type": "string"}, "usable": {"type": "boolean"},
                                                        "reason": {"type": ["string", "null"]}}}},
    "supports_styles": {"type": "boolean"}, "model": {"type": ["string", "null"]}}}
