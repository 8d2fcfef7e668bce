"""Errors raised while *signing* (bad key, unsupported key type, unreadable input).

Verification never raises: it returns a :class:`signing.status.VerificationStatus`.
"""

from __future__ import annotations


class SigningError(Exception):
    """Signing could not be performed; the message says exactly what is wrong."""
