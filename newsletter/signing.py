"""Signed links for unsubscribe, preferences and feedback.

A token is ``<payload>.<mac>``: the payload a URL-safe base64 JSON object naming
the subscriber (and, for feedback, the paper and the vote), the MAC an
HMAC-SHA256 over the purpose and the payload. A token for one purpose or one
subscriber can not be used for another; tampering with any byte fails the check.

Feedback links in emails carry the reader's signed ``vote`` token plus the vote and
the paper: ``<payload>.<mac>.<vote>.<paper, base64>`` (``feedback_token``). One
signature per email instead of two per paper (~40 us of ~85 us building a digest's
view). The signature names the reader; the vote and the paper ride along unsigned, so
whoever holds a reader's email can vote on any paper for that reader -- less than its
preferences link (signed the same way) already allows: replacing every interest.
``verify_feedback`` accepts these and the per-link tokens of earlier emails.

Speed (a digest carries two feedback links per paper, so signing runs ~20 times per
email): the keyed HMAC state is made once per secret and ``.copy()``-ed per token, and
the feedback payload is written directly as the JSON text ``json.dumps(...,
sort_keys=True, separators=(",", ":"))`` makes (same C string encoder), so tokens are
byte-for-byte what ``sign`` makes and ``verify`` accepts them unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_str
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import NewsletterError

if TYPE_CHECKING:
    from .config import Config
    from .store import Store


class BadToken(NewsletterError, ValueError):
    """A link token is malformed, forged, or for another purpose."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding (``base64.urlsafe_b64encode``, in fewer steps)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes of unpadded URL-safe base64; ``binascii.Error`` for anything else (a
    character outside the alphabet is an error, not skipped: one token, one spelling)."""
    if not _B64_TEXT.fullmatch(text):
        raise binascii.Error("not URL-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_TEXT = re.compile(r"[A-Za-z0-9_-]*")


def secret_for(config: Config, store: Store) -> str:
    """The one signing secret: ``NEWSLETTER_SECRET_KEY`` (``config.secret_key``) if set,
    else a key kept in the state database (made on first use).

    The pipeline (links in emails) and the web app (checking them) both call this, so
    they always agree.
    """
    return config.secret_key or store.secret_key()


@lru_cache(maxsize=16)
def _keyed(secret: str) -> tuple[Any, Any]:
    """HMAC-SHA256 (RFC 2104) keyed once: the inner and outer hash states after the
    padded key. Per token they are copied and fed the message (all in C), which is
    what ``hmac.new(...).digest()`` computes, without re-keying or its Python layer."""
    key = secret.encode()
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(key.translate(_IPAD))
    outer = hashlib.sha256(key.translate(_OPAD))
    return inner, outer


_BLOCK = 64  # SHA-256 block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _mac(secret: str, purpose: str, body: str) -> bytes:
    inner_keyed, outer_keyed = _keyed(secret)
    inner = inner_keyed.copy()
    inner.update(f"{purpose}.{body}".encode())
    outer = outer_keyed.copy()
    outer.update(inner.digest())
    return outer.digest()


def _sign_json(secret: str, purpose: str, payload_json: str) -> str:
    body = _b64(payload_json.encode())
    return f"{body}.{_b64(_mac(secret, purpose, body)[:18])}"


def sign(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    return _sign_json(secret, purpose, json.dumps(payload, separators=(",", ":"), sort_keys=True))


VOTE = "vote"  # the purpose of a reader's feedback token


@lru_cache(maxsize=8192)
def _paper_part(paper_id: str) -> str:
    return _b64(paper_id.encode())


def feedback_token(vote_token: str, paper_id: str, vote: int) -> str:
    """A feedback link's token: the reader's signed ``vote`` token, the vote, the paper."""
    return f"{vote_token}.{vote}.{_paper_part(paper_id)}"


def verify_feedback(secret: str, token: str) -> dict[str, Any]:
    """``{"s": subscriber, "p": paper id, "v": vote}`` of a feedback link's token: a
    reader's ``vote`` token with the vote and the paper (``feedback_token``), or a
    per-link ``feedback`` token (emails sent before); ``BadToken`` otherwise."""
    parts = token.split(".")
    if len(parts) != 4:
        return verify(secret, "feedback", token)
    reader = verify(secret, VOTE, f"{parts[0]}.{parts[1]}")
    if parts[2] not in ("1", "-1", "0") or not _B64URL.fullmatch(parts[3]):
        raise BadToken("the link is malformed")
    try:
        vote = int(parts[2])
        paper_id = _unb64(parts[3]).decode()
    except (ValueError, UnicodeDecodeError) as err:
        raise BadToken("the link is malformed") from err
    return {"s": reader["s"], "p": paper_id, "v": vote}


def verify(secret: str, purpose: str, token: str) -> dict[str, Any]:
    """Return the payload of a valid token; raise ``BadToken`` otherwise."""
    try:
        body, mac = token.split(".", 1)
        expected = _mac(secret, purpose, body)
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
    # "<base>/feedback/<the reader's vote token>", made on first use
    _feedback_base: str = field(default="", init=False, repr=False, compare=False)

    @property
    def unsubscribe(self) -> str:
        return self._subscriber_link("unsubscribe")

    @property
    def preferences(self) -> str:
        return self._subscriber_link("preferences")

    def _subscriber_link(self, purpose: str) -> str:
        if type(self.subscriber) is str:  # the JSON json.dumps would make, written directly
            token = _sign_json(self.secret, purpose, f'{{"s":{_json_str(self.subscriber)}}}')
            return f"{self.base_url.rstrip('/')}/{purpose}/{token}"
        token = sign(self.secret, purpose, {"s": self.subscriber})
        return f"{self.base_url.rstrip('/')}/{purpose}/{quote(token)}"

    def feedback(self, paper_id: str, vote: int) -> str:
        """``vote`` is +1 (more like this) or -1 (less like this)."""
        if type(paper_id) is str and type(vote) is int and type(self.subscriber) is str:
            base = self._feedback_base
            if not base:  # one signature per reader; the token is URL-safe as it is
                token = _sign_json(self.secret, VOTE, f'{{"s":{_json_str(self.subscriber)}}}')
                base = f"{self.base_url.rstrip('/')}/feedback/{token}"
                object.__setattr__(self, "_feedback_base", base)
            return f"{base}.{vote}.{_paper_part(paper_id)}"
        # Anything else (a bool vote, say): a per-link token, as emails carried before.
        token = sign(self.secret, "feedback", {"s": self.subscriber, "p": paper_id, "v": vote})
        return f"{self.base_url.rstrip('/')}/feedback/{quote(token)}"
