"""Names a customer reads instead of codes: providers, Kaspi commerce channels and partners.

Events name whom a customer paid by code (``almaty-energo``, ``KASPI_QR``, ``partner-demo-coffee``);
messages must not. The names are data, ``services/notify/display_names.toml``, one per locale. A
provider code not listed there is printed as the file's fallback ("Поставщик услуг"), never as the
code; a partner not listed is named by its merchant ("Kaspi QR").

Names compare like payments compares provider codes: case-insensitively, ``-`` and ``_`` alike.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from . import vocabulary as vocab

DEFAULT_NAMES_FILE: Final = Path(__file__).resolve().parent.parent / "display_names.toml"
SCHEMA_VERSION: Final = 1
_SECTIONS: Final = ("providers", "merchants", "partners")

Names = Mapping[str, Mapping[str, str]]


class DisplayNamesError(ValueError):
    """The display-names file is malformed (names the entry)."""


def code_key(code: object) -> str:
    """A code as compared: ``"Almaty_Energo "`` → ``"almaty-energo"``."""
    return str(code).strip().lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class DisplayNames:
    """The loaded names: ``section[code_key(code)][locale]``, and the fallback for providers."""

    providers: Names
    merchants: Names
    partners: Names
    fallback_provider: Mapping[str, str]

    def provider(self, code: str | None, locale: str) -> str:
        """The provider's name, or the fallback (never the code) when it is not listed."""
        names = self.providers.get(code_key(code)) if code else None
        return (names or self.fallback_provider)[vocab.normalize_locale(locale)]

    def merchant(self, merchant: str | None, partner_id: str | None, locale: str) -> str | None:
        """Where a purchase was made: the partner's name, else the merchant's; None when neither is known."""
        loc = vocab.normalize_locale(locale)
        for table, code in ((self.partners, partner_id), (self.merchants, merchant)):
            names = table.get(code_key(code)) if code else None
            if names is not None:
                return names[loc]
        return None

    def name_of(self, value: str, locale: str) -> str:
        """A single code of any kind resolved to its name; anything else (already a name) as it is."""
        key = code_key(value)
        for table in (self.partners, self.providers, self.merchants):
            names = table.get(key)
            if names is not None:
                return names[vocab.normalize_locale(locale)]
        return value

    def payee(self, payee: Mapping[str, Any] | str, locale: str) -> str:
        """Whom a payment went to, as the customer knows it.

        ``payee`` is a name or code (``name_of``), or the codes of a payment: ``{"provider",
        "merchant", "partner_id", "name"}`` where ``name`` is what payments printed on the receipt.
        A partner wins over its merchant; a provider not listed is the printed name if that is not
        just the code again, else the fallback.
        """
        if isinstance(payee, str):
            return self.name_of(payee, locale)
        name = payee.get("name")
        shop = self.merchant(payee.get("merchant"), payee.get("partner_id"), locale)
        if shop is not None:
            return shop
        provider = payee.get("provider")
        if provider:
            if code_key(provider) in self.providers or not name or code_key(name) == code_key(provider):
                return self.provider(provider, locale)
            return str(name)
        if name:
            return self.name_of(str(name), locale)
        return self.fallback_provider[vocab.normalize_locale(locale)]


def _locales(where: str, entry: object) -> dict[str, str]:
    if not isinstance(entry, Mapping):
        raise DisplayNamesError(f"{where}: expected a table of {', '.join(vocab.LOCALES)}")
    missing = [loc for loc in vocab.LOCALES if loc not in entry]
    extra = sorted(set(entry) - set(vocab.LOCALES))
    if missing or extra:
        raise DisplayNamesError(f"{where}: missing locales {missing}, unknown keys {extra}")
    out: dict[str, str] = {}
    for loc in vocab.LOCALES:
        name = entry[loc]
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise DisplayNamesError(f"{where}.{loc}: a name is a non-empty string without outer spaces")
        if any(q in name for q in '«»"'):
            raise DisplayNamesError(f"{where}.{loc}: no quotation marks (the templates add «» themselves)")
        out[loc] = name
    return out


def load_names(path: Path | str = DEFAULT_NAMES_FILE) -> DisplayNames:
    """Load and check the names file (every entry in every locale); ``DisplayNamesError`` if malformed."""
    with Path(path).open("rb") as f:
        data = tomllib.load(f)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DisplayNamesError(f"{path}: schema_version must be {SCHEMA_VERSION}")
    unknown = sorted(set(data) - {"schema_version", "fallback", *_SECTIONS})
    if unknown:
        raise DisplayNamesError(f"{path}: unknown sections {unknown}")
    sections: dict[str, dict[str, dict[str, str]]] = {}
    for section in _SECTIONS:
        table = data.get(section, {})
        if not isinstance(table, Mapping):
            raise DisplayNamesError(f"{section}: expected a table")
        entries: dict[str, dict[str, str]] = {}
        for code, entry in table.items():
            key = code_key(code)
            if key in entries:
                raise DisplayNamesError(f"{section}.{code}: listed twice (codes compare case- and _/- blind)")
            entries[key] = _locales(f"{section}.{code}", entry)
        sections[section] = entries
    fallback = data.get("fallback", {})
    if not isinstance(fallback, Mapping) or "provider" not in fallback:
        raise DisplayNamesError("fallback.provider is required")
    return DisplayNames(
        providers=sections["providers"],
        merchants=sections["merchants"],
        partners=sections["partners"],
        fallback_provider=_locales("fallback.provider", fallback["provider"]),
    )


@lru_cache(maxsize=1)
def default_names() -> DisplayNames:
    """The names shipped with notify, loaded once."""
    return load_names()
