"""Bearer-token checks for ``dcreg serve``: writes need the token from ``--token-file``.

The token is compared in constant time and never written to logs, errors or responses. With no
token configured the server is read-only: every write is refused.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from ..errors import UserError

#: The message huggingface_hub recognises as "bad credentials" (not "repository not found").
BAD_CREDENTIALS = "Invalid credentials in Authorization header"
MAX_TOKEN_BYTES = 4096


class TokenFileError(UserError):
    """The token file is missing, empty, too large or not text."""


class WriteDenied(Exception):
    """A write request without the right token (status 401) or on a read-only server (403)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def load_token(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace stripped); TokenFileError if unusable."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_TOKEN_BYTES:
            raise TokenFileError(f"token file {p} is larger than {MAX_TOKEN_BYTES} bytes")
        token = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise TokenFileError(f"token file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"token file {p} cannot be read as text ({type(exc).__name__})") from None
    if not token or any(ord(c) < 33 or ord(c) == 127 for c in token):
        raise TokenFileError(f"token file {p} must hold one token: printable, no spaces")
    return token


class TokenAuth:
    """Checks ``Authorization: Bearer <token>`` headers against the configured token (or none)."""

    def __init__(self, token: str | None):
        self._token = token.encode("utf-8") if token else None

    @property
    def read_only(self) -> bool:
        return self._token is None

    def check_write(self, authorization: str | None) -> None:
        """Raise WriteDenied unless ``authorization`` carries the configured bearer token."""
        if self._token is None:
            raise WriteDenied(403, "this server is read-only (it was started without a token file)")
        scheme, _, given = (authorization or "").partition(" ")
        given_b = given.strip().encode("utf-8", "replace")
        # compare_digest on equal-length inputs only leaks the length, which is public anyway
        ok = scheme.lower() == "bearer" and hmac.compare_digest(given_b, self._token)
        if not ok:
            raise WriteDenied(401, BAD_CREDENTIALS)

    def __repr__(self) -> str:  # never show the token
        return f"TokenAuth(read_only={self.read_only})"
