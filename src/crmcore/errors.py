"""The crmcore error tree: every error the library raises on purpose inherits from `CrmError`.

Hosts catch `CrmError` for everything, or a subclass for one kind of failure. Messages name the
field or object and the reason, so they can be shown to a user or logged as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

__all__ = [
    "AlreadyExists",
    "ConcurrencyError",
    "CrmError",
    "FieldError",
    "NotFound",
    "PermissionDenied",
    "RuleError",
    "StorageError",
    "TransitionError",
    "ValidationError",
]


class CrmError(Exception):
    """Base of every error crmcore raises on purpose."""


@attrs.frozen
class FieldError:
    """One problem with one field: its dotted path (``emails[0].address``) and the reason."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ValidationError(CrmError, ValueError):
    """Input that cannot be accepted; lists every bad field at once.

    ``field`` and ``reason`` describe the first problem (the common case is exactly one);
    ``errors`` holds all of them.
    """

    errors: tuple[FieldError, ...]

    def __init__(self, field: str, reason: str, *, more: Iterable[FieldError] = ()) -> None:
        self.errors = (FieldError(field, reason), *more)
        super().__init__("; ".join(str(e) for e in self.errors))

    @property
    def field(self) -> str:
        """Dotted path of the first bad field."""
        return self.errors[0].path

    @property
    def reason(self) -> str:
        """Why the first bad field was refused."""
        return self.errors[0].reason

    @classmethod
    def from_errors(cls, errors: Sequence[FieldError]) -> ValidationError:
        """Build one error that reports every item of ``errors`` (at least one)."""
        if not errors:
            raise ValueError("from_errors needs at least one FieldError")
        first, *rest = errors
        return cls(first.path, first.reason, more=rest)

    def prefixed(self, prefix: str) -> ValidationError:
        """The same problems with every path placed under ``prefix`` (``customer`` + ``name``)."""
        return ValidationError.from_errors(
            [FieldError(join_path(prefix, e.path), e.reason) for e in self.errors]
        )


def join_path(prefix: str, path: str) -> str:
    """Join two field paths: ``a`` + ``b`` is ``a.b``, ``a`` + ``[0]`` is ``a[0]``."""
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


class NotFound(CrmError, LookupError):
    """The object asked for does not exist (in this tenant)."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"{kind} {id!r} not found")


class AlreadyExists(CrmError):
    """An object with this id is already stored (in this tenant)."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"{kind} {id!r} already exists")


class ConcurrencyError(CrmError):
    """Another unit of work changed the object first; reload it and try again."""


class TransitionError(CrmError):
    """A state transition was refused; ``unmet`` lists every requirement that failed."""

    def __init__(self, message: str, unmet: Sequence[str] = ()) -> None:
        self.unmet = tuple(unmet)
        detail = "; ".join(self.unmet)
        super().__init__(f"{message}: {detail}" if detail else message)


class RuleError(CrmError):
    """A rule or condition definition is invalid, or cannot be applied to this data."""


class PermissionDenied(CrmError):
    """The caller may not perform this operation."""


class StorageError(CrmError):
    """The storage backend failed for a reason that is not the caller's input (connection, disk)."""
