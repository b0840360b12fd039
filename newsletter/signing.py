"""Signed links for unsubscribe, preferences and feedback.

A token is ``<payload>.<mac>``: the payload a URL-safe base64 JSON object naming
the subscriber (and, for feedback, the paper and the vote), the MAC an
HMAC-SHA256 over the purpose and the payload. A token for one purpose or one
subscriber can not be used for another; tampering with any byte fails the check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import NewsletterError

if TYPE_CHECKING:
    from .config import Config
    from .store import Store


class BadToken(NewsletterError, ValueError):
    """A link token is malformed, forged, or for another purpose."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret_for(config: Config, store: Store) -> str:
    """The one signing secret: ``NEWSLETTER_SECRET_KEY`` (``config.secret_key``) if set,
    else a key kept in the state database (made on first use).

    The pipeline (links in emails) and the web app (checking them) both call this, so
    they always agree.
    """
    return config.secret_key or store.secret_key()


def sign(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac[:18])}"


def verify(secret: str, purpose: str, token: str) -> dict[str, Any]:
    """Return the payload of a valid token; raise ``BadToken`` otherwise."""
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(secret.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_unb64(mac), expected[:18]):
            raise BadToken("the link's signature does not match")
        payload = json.loads(_unb64(body))
    except BadToken:
        raise
    except (ValueError, UnicodeDecodeError) as err:
        raise BadToken("the link is malformed") from err
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), str):
        raise BadToken("the link is malformed")
    return payload


@dataclass(frozen=True, slots=True)
class Links:
    """The signed links of one subscriber, made once per email."""

    base_url: str
    secret: str
    subscriber: str

    @property
    def unsubscribe(self) -> str:
        token = sign(self.secret, "unsubscribe", {"s": self.subscriber})
        return f"{self.base_url.rstrip('/')}/unsubscribe/{quote(token)}"

    @property
    def preferences(self) -> str:
        token = sign(self.secret, "preferences", {"s": self.subscriber})
        return f"{self.base_url.rstrip('/')}/preferences/{quote(token)}"

    def feedback(self, paper_id: str, vote: int) -> str:
        """``vote`` is +1 (more like this) or -1 (less like this)."""
        token = sign(self.secret, "feedback", {"s": self.subscriber, "p": paper_id, "v": vote})
        return f"{self.base_url.rstrip('/')}/feedback/{quote(token)}"
