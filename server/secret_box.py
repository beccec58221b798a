"""Secret variables encrypted at rest, with Fernet (AES-128-CBC and HMAC-SHA256).

The key lives outside the database: in the file ``SHIPWAY_SECRET_KEY_FILE`` (by
default ``<state dir>/secret.key``), made on first start, readable by its owner
only. A copy of the database alone reveals no secret; losing the key loses the
values (the names stay, and each can be set again).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from pipelines.errors import ShipwayError


class SecretKeyError(ShipwayError):
    """The key cannot open a stored value: it is not the key that sealed it."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        """Read the key, or make one when the file does not exist yet."""
        try:
            return cls(path.read_bytes().strip())
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return cls(path.read_bytes().strip())
        with os.fdopen(descriptor, "wb") as out:
            out.write(key + b"\n")
        return cls(key)

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret cannot be decrypted: the server's secret key is not the "
                "one it was stored with; set the secret again"
            ) from None
