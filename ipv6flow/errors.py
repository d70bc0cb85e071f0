"""The few exception types a user can see.

Library code raises these; only ``cli.py`` turns them into messages
(``Error: PATH: what is wrong``) and exit codes.
"""


class Ipv6flowError(Exception):
    """Base class of every error ipv6flow reports to a user."""


class CaptureError(Ipv6flowError):
    """A whole capture file cannot be read (or cannot be read further).

    ``path`` names the file; ``message`` says what is wrong, in one line,
    with the record number and byte offset where they are known.
    """

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class UsageError(Ipv6flowError):
    """An option value that cannot be used (bad prefix, bad interval)."""
