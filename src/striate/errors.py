"""Exceptions of striate's own (everything else raises the built-in ValueError/TypeError/IndexError)."""


class FormatError(ValueError):
    """A file is malformed, truncated or hostile: raised by every striate file reader.

    It subclasses ValueError so ``except ValueError`` also catches it.
    """


__all__ = ["FormatError"]
