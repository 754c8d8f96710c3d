"""keyguard's domain errors: the only exceptions a handler lets escape."""

from __future__ import annotations


class KeyguardError(Exception):
    """Base of every error keyguard raises on purpose."""


class ConfigError(KeyguardError):
    """The function's configuration (environment variables) is invalid."""


class MalformedEvent(KeyguardError):
    """The event does not have the shape of the trigger it was routed to. Nothing was done."""


class ResponseFailed(KeyguardError):
    """At least one action failed (or the notification could not be sent).

    Raised after the notification naming the failure was attempted, so that Lambda retries and the
    dead-letter queue keeps the event. ``report`` holds what was done and what failed.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report
