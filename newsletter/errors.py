"""One root exception; leaves also inherit the built-in they resemble.

Every message is written for the user: what went wrong, where, and how to fix it.
The CLI prints ``Error: <message>`` and exits non-zero; nothing else catches these
silently.
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(NewsletterError, ValueError):
    """The configuration is invalid. Carries every problem found, one line each."""

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class TemplateError(NewsletterError, ValueError):
    """A template could not be loaded or compiled: ``<file>:<line>: <what>``."""

    exit_code = 2


class SourceError(NewsletterError, IOError):
    """A source could not be fetched or is not a feed."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"source '{source}': {reason}")


class StoreError(NewsletterError, RuntimeError):
    """The state database cannot be opened or is in an unexpected state."""


class LockError(StoreError):
    """Another process holds the scheduler lock on this state."""


class DeliveryError(NewsletterError, ConnectionError):
    """A message could not be handed to the transport."""

    def __init__(self, message: str, *, permanent: bool = False, code: int | None = None) -> None:
        self.permanent = permanent
        self.code = code
        super().__init__(message)


class SubscriberNotFound(NewsletterError, LookupError):
    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(
            f"no subscriber '{email}' in the config; run 'newsletter validate' to list them"
        )
