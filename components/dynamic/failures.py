"""A dynamic provider's failure in one line: what failed, and the server's own error.

The SDK's provider server reports any exception with its traceback, so a
database or Vault error raised inside the driver ends a screen of the driver's
frames and chained exceptions. The providers run their server calls inside
`failing_as`: the error then ends in one line naming the resource and the step
(or the statement), and the server's message, with the driver's frames dropped.
"""

from contextlib import contextmanager
from typing import Iterator

import hvac
import psycopg
import requests

#: What a call to Vault raises when Vault refuses it, or cannot be reached.
VAULT_ERRORS = (hvac.exceptions.VaultError, requests.RequestException)


class ProviderError(RuntimeError):
    """A provider's call to its server failed; the message is one line."""


def one_line(error: BaseException) -> str:
    """The error's message on one line: a database error's primary message (without the LINE, DETAIL
    and HINT lines PostgreSQL adds), else its text with the line breaks folded."""
    primary = getattr(getattr(error, "diag", None), "message_primary", None)
    return primary or " ".join(str(error).split()) or type(error).__name__


@contextmanager
def failing_as(what: str, errors: tuple[type[BaseException], ...] = (psycopg.Error,)) -> Iterator[None]:
    """Runs the block; an error of `errors` in it (the database's, unless told) becomes a ProviderError
    "<what>: <the error>". `what` is shown: it must hold no secret (no statement that sets a password)."""
    try:
        yield
    except errors as error:
        raise ProviderError(f"{what}: {one_line(error)}") from None
