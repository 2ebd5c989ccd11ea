"""The contract registry: every command and event model, by ``TYPE`` and ``VERSION``.

Models register themselves when their class is created (``Contract.__pydantic_init_subclass__``),
so the registry is complete once ``shared.contracts`` is imported (its ``__init__`` imports every
service module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.contracts.base import Contract

#: Latest registered version of each contract, by type name.
CONTRACTS: dict[str, type[Contract]] = {}
#: Every registered (type name, version) pair.
_VERSIONS: dict[tuple[str, int], type[Contract]] = {}


def register(model: type[Contract]) -> None:
    """Add a contract model; a second, different model under the same type and version is an error."""
    key = (model.TYPE, model.VERSION)
    existing = _VERSIONS.get(key)
    if existing is not None and existing is not model:
        same_origin = (existing.__module__, existing.__qualname__) == (model.__module__, model.__qualname__)
        if not same_origin:  # a re-import of the same module (importlib.reload) may replace itself
            raise TypeError(
                f"contract {model.TYPE} v{model.VERSION} is already defined by "
                f"{existing.__module__}.{existing.__qualname__}"
            )
    _VERSIONS[key] = model
    latest = CONTRACTS.get(model.TYPE)
    if latest is None or latest.VERSION <= model.VERSION:
        CONTRACTS[model.TYPE] = model


def contract_for(type_name: str, version: int | None = None) -> type[Contract] | None:
    """The model for ``type_name`` at ``version`` (the latest when None), or None if unknown."""
    if version is None:
        return CONTRACTS.get(type_name)
    return _VERSIONS.get((type_name, version))


def all_contracts() -> list[type[Contract]]:
    """Every registered model (all versions), sorted by type name then version."""
    return [_VERSIONS[key] for key in sorted(_VERSIONS)]
