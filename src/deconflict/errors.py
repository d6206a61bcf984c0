"""Errors a user can act on: one base class, small subclasses, each with a plain message."""

from __future__ import annotations


class DeconflictError(Exception):
    """Base of every error the mechanism reports to a person."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidInput(DeconflictError):
    """Input that breaks a rule of the format or the domain; nothing was changed."""

    status = 422


class NotFound(DeconflictError):
    """A mechanism, member, activity, zone or conflict that does not exist."""

    status = 404


class StaleVersion(DeconflictError):
    """An amendment named a version of the activity that is no longer the current one."""

    status = 409


class InvalidState(DeconflictError):
    """The action does not apply to the object in its current state."""

    status = 409


class Forbidden(DeconflictError):
    """The acting member may not do this."""

    status = 403


class LedgerBroken(DeconflictError):
    """The record's hash chain does not verify."""

    status = 500
