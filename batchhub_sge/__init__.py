"""Son of Grid Engine backend for batchhub (the reference implementation)."""

from .backend import SGEBackend

__all__ = ["SGEBackend"]
