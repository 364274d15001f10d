"""Small real datasets shipped with the package."""

from ._mouse_pancreas import mouse_pancreas

__all__ = ["mouse_pancreas"]
