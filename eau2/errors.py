"""Exceptions eau2 raises on bad input; each message says what was wrong and where."""


class Eau2Error(Exception):
    """Base class of eau2's own errors."""


class SorError(Eau2Error, ValueError):
    """SoR input that cannot be read: a bad window, a schema that does not match, unreadable bytes."""


class SorWarning(UserWarning):
    """Rows of SoR input were dropped because they are not rows or do not fit the schema."""


class MissingValueError(Eau2Error, ValueError):
    """A typed getter was asked for a value that is missing."""
