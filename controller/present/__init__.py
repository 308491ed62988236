"""Presentation: every line, table and document a person or a build log reads. rich is used
here and only here; the layers above take a `Console` from this package."""

from rich.console import Console

__all__ = ["Console"]
