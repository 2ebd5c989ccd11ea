"""The trust boundary: who signed a record, and whether that producer may write it there.

Every record on an aqsha topic carries an Ed25519 signature of its producer (docs/security.md):

* ``aqsha-key-id``: the signing key's id, ``<principal>:<16 hex of sha256(public key)>``, so keys
  can rotate (a new key has a new id; both are in the registry during the overlap).
* ``aqsha-signature``: base64url of the Ed25519 signature over ``signing_input(topic, key, value)``:
  a domain tag, the topic the record was written to, the record key and the value bytes, each
  length-prefixed. So a signed record replayed on another topic, or under another key, fails.

The consumer side (``shared.kafka.subscribe``) checks, before any effect and in this order:
signature headers present (``unsigned``), key id known (``unknown_key``), not revoked
(``key_revoked``), inside its validity (``key_expired``), signature valid (``bad_signature``); then,
after decoding, that the contract belongs on the topic (``wrong_topic``), that the key's principal
may write it there (``not_permitted``, incl. the channel rule below), that the envelope's
``producer`` names that principal (``producer_mismatch``), and that the record key, the envelope key
and the payload's key field agree (``key_mismatch``). Each failure dead-letters the record with that
reason and changes nothing.

Why Ed25519 and not per-producer HMAC keys: with HMAC every consumer holds the secret of every
producer it reads, so one compromised consumer could mint any producer's records. With Ed25519 a
consumer holds only public keys; a stolen key lets its thief write exactly what that one principal
may write. ``cryptography`` (OpenSSL) does the maths; nothing here is hand-rolled crypto.

The channel rule: a payments command's ``channel`` is asserted by its producer, so it must match:
the app gateway signs ``APP`` commands, the cash network ``TERMINAL``, ``ATM`` and ``CASHIER`` ones,
and cash (``funding=CASH``) can only come from the cash network.

TEST-ONLY switch: ``AQSHA_TEST_DISABLE_VERIFICATION=1`` in a process's environment turns every check
here off (signatures and permissions; the kernel still dead-letters malformed records). It exists
only so that the hostile-producer suite can prove it fails without the checks (a mutation check).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.topics import PAYMENTS_COMMANDS, PRINCIPALS, TopicSpec

log = logging.getLogger("aqsha.trust")

HEADER_SIGNATURE: Final = "aqsha-signature"
HEADER_KEY_ID: Final = "aqsha-key-id"
SIGNATURE_HEADERS: Final = (HEADER_KEY_ID, HEADER_SIGNATURE)
_DOMAIN: Final = b"aqsha-record-signature-v1"
TEST_DISABLE_ENV: Final = "AQSHA_TEST_DISABLE_VERIFICATION"

#: The headers of every record on an aqsha topic (docs/security.md): the envelope's ids mirrored for
#: tools, and the producer's Ed25519 signature, which consumers verify before any effect.
RECORD_HEADERS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": "Kafka headers of an aqsha record. The signature covers the topic, key and value; the "
    "other headers are unsigned hints for tools (consumers rely only on the signed value).",
    "required": ["aqsha-key-id", "aqsha-signature"],
    "properties": {
        "aqsha-key-id": {
            "type": "string",
            "pattern": "^[a-z-]+:[0-9a-f]{16}$",
            "description": "The signing key, <principal>:<16 hex of sha256(public key)> (trust registry).",
        },
        "aqsha-signature": {
            "type": "string",
            "description": "base64url Ed25519 signature over shared.trust.signing_input(topic, key, value).",
        },
        "aqsha-type": {"type": "string", "description": "The envelope's type (unsigned hint)."},
        "aqsha-event-id": {"type": "string", "format": "uuid", "description": "The envelope's event_id."},
        "aqsha-correlation-id": {"type": "string", "format": "uuid", "description": "The correlation id."},
        "aqsha-schema-version": {"type": "string", "description": "The envelope's schema_version."},
    },
}

#: Reasons a record is refused (``aqsha-dlq-reason``), in the order they are checked.
REASONS: Final = (
    "unsigned",
    "unknown_key",
    "key_revoked",
    "key_expired",
    "bad_signature",
    "wrong_topic",
    "not_permitted",
    "producer_mismatch",
    "key_mismatch",
)

# The channel rule (module docstring): which principal may assert which channel.
_CHANNEL_PRINCIPAL: Final = {"APP": "app-gateway", "TERMINAL": "cash-network", "ATM": "cash-network",
                             "CASHIER": "cash-network"}  # fmt: skip


def verification_disabled() -> bool:
    """Whether the test-only switch is on in this process."""
    return os.environ.get(TEST_DISABLE_ENV, "") not in ("", "0", "false")


class Untrusted(Exception):
    """A record that is not authentic or not permitted; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Origin:
    """Who authenticated a record: the principal and the id of the key it signed with."""

    principal: str
    key_id: str


_ORIGIN: ContextVar[Origin | None] = ContextVar("aqsha_origin", default=None)


def current_origin() -> Origin | None:
    """The verified origin of the record being handled (set by the subscriber around the handler)."""
    return _ORIGIN.get()


@contextlib.contextmanager
def origin_scope(origin: Origin | None) -> Iterator[None]:
    """Make ``origin`` the current origin inside the block."""
    token = _ORIGIN.set(origin)
    try:
        yield
    finally:
        _ORIGIN.reset(token)


# -- keys ---------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_for(principal: str, public_key: Ed25519PublicKey) -> str:
    """``<principal>:<first 16 hex of sha256(raw public key)>``: a new key gets a new id."""
    return f"{principal}:{hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]}"


def signing_input(topic: str, key: bytes | None, value: bytes) -> bytes:
    """What a signature covers: the domain tag, topic, key and value, each length-prefixed."""
    topic_b = topic.encode()
    key_b = key or b""
    return b"".join(
        (
            _DOMAIN,
            len(topic_b).to_bytes(4, "big"),
            topic_b,
            len(key_b).to_bytes(4, "big"),
            key_b,
            len(value).to_bytes(8, "big"),
            value,
        )
    )


class Signer:
    """Signs records as one principal."""

    def __init__(self, principal: str, private_key: Ed25519PrivateKey) -> None:
        if principal not in PRINCIPALS:
            raise ValueError(f"unknown principal {principal!r}; known: {', '.join(PRINCIPALS)}")
        self.principal = principal
        self._key = private_key
        self.key_id = key_id_for(principal, private_key.public_key())

    @classmethod
    def generate(cls, principal: str) -> Signer:
        """A signer with a fresh key (tests and development keyrings)."""
        return cls(principal, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, principal: str, pem: bytes) -> Signer:
        """A signer from an unencrypted PKCS#8 PEM Ed25519 private key."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("signing key is not an Ed25519 private key")
        return cls(principal, key)

    @classmethod
    def from_file(cls, path: Path, principal: str | None = None) -> Signer:
        """A signer from ``path``; the principal defaults to the file's stem (``payments.pem``)."""
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"cannot read signing key {path}: {exc.strerror}") from None
        return cls.from_pem(principal or path.stem, pem)

    def pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (write it with mode 0600)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_entry(self, *, not_after: datetime | None = None, revoked: bool = False) -> dict[str, Any]:
        """This key's entry for a trust registry file."""
        entry: dict[str, Any] = {
            "key_id": self.key_id,
            "principal": self.principal,
            "public_key": _b64(_raw_public(self._key.public_key())),
        }
        if not_after is not None:
            entry["not_after"] = not_after.isoformat()
        if revoked:
            entry["revoked"] = True
        return entry

    def sign(self, topic: str, key: bytes | None, value: bytes) -> dict[str, str]:
        """The signature headers for a record written to ``topic`` (the concrete topic name)."""
        signature = self._key.sign(signing_input(topic, key, value))
        return {HEADER_KEY_ID: self.key_id, HEADER_SIGNATURE: _b64(signature)}

    def sign_list(self, topic: str, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
        """``sign`` as aiokafka's header list."""
        return [(k, v.encode()) for k, v in self.sign(topic, key, value).items()]


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One public key of the registry."""

    key_id: str
    principal: str
    public_key: Ed25519PublicKey
    not_after: float | None = None  # epoch seconds
    revoked: bool = False


@dataclass
class TrustRegistry:
    """Public keys by key id; checks signatures and producer permissions."""

    keys: dict[str, TrustedKey] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]]) -> TrustRegistry:
        """A registry from ``public_entry``-shaped mappings; raises ``ValueError`` on a bad entry."""
        keys: dict[str, TrustedKey] = {}
        for entry in entries:
            try:
                principal = str(entry["principal"])
                public = Ed25519PublicKey.from_public_bytes(_unb64(str(entry["public_key"])))
                key_id = str(entry["key_id"])
            except (KeyError, ValueError) as exc:
                raise ValueError(f"bad trust registry entry {dict(entry)!r}: {exc}") from None
            if principal not in PRINCIPALS:
                raise ValueError(f"trust registry: unknown principal {principal!r} for key {key_id}")
            if key_id != key_id_for(principal, public):
                raise ValueError(f"trust registry: key id {key_id} does not match its public key")
            not_after = entry.get("not_after")
            keys[key_id] = TrustedKey(
                key_id,
                principal,
                public,
                datetime.fromisoformat(str(not_after)).timestamp() if not_after else None,
                bool(entry.get("revoked", False)),
            )
        return cls(keys)

    @classmethod
    def load(cls, path: Path) -> TrustRegistry:
        """Read a registry file (``{"keys": [...]}``); a clear ``RuntimeError`` if it cannot."""
        try:
            doc = json.loads(path.read_text())
            return cls.from_entries(doc["keys"])
        except OSError as exc:
            raise RuntimeError(f"cannot read the trust registry {path}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"invalid trust registry {path}: {exc}") from None

    def verify(
        self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Origin:
        """The origin of a record, or ``Untrusted`` with the reason it is refused."""
        key_id = signature = None
        for name, raw in headers:
            if name == HEADER_KEY_ID:
                key_id = raw
            elif name == HEADER_SIGNATURE:
                signature = raw
        if key_id is None or signature is None:
            raise Untrusted("unsigned", "the record carries no aqsha-key-id/aqsha-signature headers")
        kid = key_id.decode(errors="replace")
        trusted = self.keys.get(kid)
        if trusted is None:
            raise Untrusted("unknown_key", f"key id {kid!r} is not in the trust registry")
        if trusted.revoked:
            raise Untrusted("key_revoked", f"key {kid} is revoked")
        if trusted.not_after is not None and time.time() > trusted.not_after:
            raise Untrusted("key_expired", f"key {kid} expired")
        try:
            trusted.public_key.verify(_unb64(signature.decode()), signing_input(topic, key, value))
        except (InvalidSignature, ValueError, UnicodeDecodeError):
            raise Untrusted(
                "bad_signature", f"signature by {kid} does not match this topic, key and value"
            ) from None
        return Origin(trusted.principal, kid)


def check_permitted(spec: TopicSpec, origin: Origin, envelope: Any, record_key: bytes | None) -> None:
    """Raise ``Untrusted`` unless ``origin`` may write ``envelope`` on ``spec``'s topic under that key.

    ``envelope`` is a decoded ``Envelope``; ``spec`` is the registry entry of the topic it arrived on.
    """
    type_ = envelope.type
    if type_ not in spec.contracts:
        raise Untrusted(
            "wrong_topic", f"{type_} does not belong on {spec.name} (it carries: {', '.join(spec.contracts)})"
        )
    writers = spec.writers_of(type_)
    if origin.principal not in writers:
        raise Untrusted(
            "not_permitted", f"{origin.principal} may not write {type_} (only: {', '.join(writers)})"
        )
    payload = envelope.payload
    channel = getattr(payload, "channel", None)
    if spec.name == PAYMENTS_COMMANDS.name:
        wanted = _CHANNEL_PRINCIPAL.get(str(channel)) if channel is not None else None
        if wanted is not None and wanted != origin.principal:
            raise Untrusted("not_permitted", f"channel {channel} commands come only from {wanted}")
        if str(getattr(payload, "funding", "")) == "CASH" and origin.principal != "cash-network":
            raise Untrusted("not_permitted", "cash can only come from cash-network")
    if envelope.producer != origin.principal:
        raise Untrusted(
            "producer_mismatch", f"envelope says producer {envelope.producer!r}, signed by {origin.principal}"
        )
    payload_key: Any = getattr(payload, spec.key_field, None)
    expected = payload_key.isoformat() if isinstance(payload_key, date) else payload_key
    record = record_key.decode(errors="replace") if record_key is not None else None
    if expected is None or record != str(expected) or envelope.key != str(expected):
        raise Untrusted(
            "key_mismatch",
            f"record key {record!r} and envelope key {envelope.key!r} must equal {spec.key_field}",
        )


# -- producers outside the services: the demo, the CLI, tests, chaos and bench -------------------------


def producer_for(payload: Any) -> str:
    """The principal that would send ``payload`` (a contract instance) in production.

    The one writer the registry allows, or for payments commands the one its channel and funding
    name (the channel rule). Tools that act for outside systems sign as this principal.
    """
    from shared.topics import topic_for_contract

    spec = topic_for_contract(payload.TYPE)
    writers = spec.writers_of(payload.TYPE)
    if spec.name == PAYMENTS_COMMANDS.name:
        if str(getattr(payload, "funding", "")) == "CASH":
            return "cash-network"
        wanted = _CHANNEL_PRINCIPAL.get(str(getattr(payload, "channel", "")))
        if wanted is not None and wanted in writers:
            return wanted
    return writers[0]


class Keyring:
    """Signers of several principals: for tools and tests that act for several outside systems."""

    def __init__(self, signers: Mapping[str, Signer]) -> None:
        self._signers = dict(signers)

    @classmethod
    def from_dir(cls, directory: Path) -> Keyring:
        """Every ``<principal>.pem`` in ``directory``."""
        return cls(
            {p.stem: Signer.from_file(p) for p in sorted(directory.glob("*.pem")) if p.stem in PRINCIPALS}
        )

    def signer(self, principal: str) -> Signer:
        """The signer of ``principal``; ``KeyError`` with a clear message if this keyring lacks it."""
        try:
            return self._signers[principal]
        except KeyError:
            raise KeyError(f"no signing key for {principal} in this keyring") from None

    def sign(self, principal: str, topic: str, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
        """Signature headers (aiokafka's list form) for a record ``principal`` writes to ``topic``."""
        return self.signer(principal).sign_list(topic, key, value)


# -- keyrings for development and tests --------------------------------------------------------------


def load_signer(trust: Any, principal: str) -> Signer:
    """The signer of ``principal`` from ``TrustSettings``: ``signing_key_file`` or ``keys_dir``."""
    if trust.signing_key_file is not None:
        return Signer.from_file(Path(trust.signing_key_file), principal)
    if trust.keys_dir is not None:
        return Signer.from_file(Path(trust.keys_dir) / f"{principal}.pem", principal)
    raise RuntimeError(
        f"no signing key for {principal}: set AQSHA_TRUST_SIGNING_KEY_FILE or AQSHA_TRUST_KEYS_DIR "
        "(python -m shared.trust keygen DIR makes a development keyring)"
    )


def load_registry(trust: Any) -> TrustRegistry:
    """The trust registry from ``TrustSettings.registry_file``; a clear error when unset."""
    if trust.registry_file is None:
        raise RuntimeError(
            "no trust registry: set AQSHA_TRUST_REGISTRY_FILE (python -m shared.trust keygen DIR makes a "
            "development keyring)"
        )
    return TrustRegistry.load(Path(trust.registry_file))


def write_keyring(directory: Path, principals: Iterable[str] = PRINCIPALS) -> dict[str, Signer]:
    """Generate a key per principal into ``directory`` (``<principal>.pem``, mode 0600) and a
    ``registry.json`` with their public keys; return the signers. For development and tests only.
    """
    directory.mkdir(parents=True, exist_ok=True)
    signers = {p: Signer.generate(p) for p in principals}
    for principal, signer in signers.items():
        path = directory / f"{principal}.pem"
        path.write_bytes(signer.pem())
        path.chmod(0o600)
    registry = {"keys": [s.public_entry() for s in signers.values()]}
    (directory / "registry.json").write_text(json.dumps(registry, indent=2) + "\n")
    return signers


def keyring_env(directory: Path) -> dict[str, str]:
    """The ``AQSHA_TRUST_*`` variables that point a process at a ``write_keyring`` directory."""
    return {
        "AQSHA_TRUST_KEYS_DIR": str(directory),
        "AQSHA_TRUST_REGISTRY_FILE": str(directory / "registry.json"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.trust keygen DIR [PRINCIPAL ...]``: a development keyring."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m shared.trust", description=main.__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    keygen = sub.add_parser("keygen", help="generate <principal>.pem keys and registry.json")
    keygen.add_argument("directory", type=Path)
    keygen.add_argument("principals", nargs="*", default=list(PRINCIPALS))
    args = parser.parse_args(argv)
    signers = write_keyring(args.directory, args.principals)
    for signer in signers.values():
        print(signer.key_id)
    for name, value in keyring_env(args.directory).items():
        print(f"export {name}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
