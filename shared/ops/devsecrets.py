"""Development secrets: every key a platform needs, made fresh for one run (``make run``, tests).

Nothing here is ever committed: ``write_dev_secrets(directory)`` generates a signing key per
principal (``shared.trust.write_keyring``), the trust registry, and the one-time-code keys, and
returns the ``AQSHA_*`` environment that points processes at them. Production takes the same
variables from its secret store (docs/security.md).
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from shared.trust import keyring_env, write_keyring

#: Every variable ``write_dev_secrets`` sets.
SECRET_VARIABLES = frozenset(
    {
        "AQSHA_TRUST_KEYS_DIR",
        "AQSHA_TRUST_REGISTRY_FILE",
        "AQSHA_OTP_HASH_KEY",
        "AQSHA_OTP_TRANSPORT_KEY",
    }
)


def write_dev_secrets(directory: Path) -> dict[str, str]:
    """Generate the development keyring and secrets under ``directory``; return their environment."""
    write_keyring(directory / "keys")
    return {
        **keyring_env(directory / "keys"),
        # payments: HMAC key of the stored one-time-code hashes.
        "AQSHA_OTP_HASH_KEY": secrets.token_urlsafe(32),
        # payments -> notify: the AEAD key that seals one-time codes on Kafka (32 bytes, base64).
        "AQSHA_OTP_TRANSPORT_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
