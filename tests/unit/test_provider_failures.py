"""A dynamic provider's failure reads as one line: what failed, and the server's error."""

import psycopg
import pytest

from components.dynamic.failures import ProviderError, failing_as, one_line


def test_a_database_error_becomes_one_line_naming_what_failed():
    statement = 'GRANT SELECT ON TABLE "public"."nope" TO "dbcreds_group_app"'
    with pytest.raises(ProviderError) as error:
        with failing_as(f'group role "dbcreds_group_app": {statement}'):
            raise psycopg.errors.UndefinedTable('relation "public.nope" does not exist\nLINE 1: GRANT SELECT ON ...\n'
                                                '                        ^')
    assert str(error.value) == ('group role "dbcreds_group_app": GRANT SELECT ON TABLE "public"."nope" TO '
                                '"dbcreds_group_app": relation "public.nope" does not exist LINE 1: GRANT SELECT ON ... ^')
    # The driver's exception is not chained: its traceback is not printed after the line.
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_a_connection_failure_is_folded_into_the_line():
    with pytest.raises(ProviderError, match=r"^dropping the service user 'svc': connection failed: connection to "
                                            r"server at \"127.0.0.1\", port 1 failed: Connection refused Is the "
                                            r"server running on that host and accepting TCP/IP connections\?$"):
        with failing_as("dropping the service user 'svc'"):
            raise psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", port 1 failed: '
                                           'Connection refused\n\tIs the server running on that host and accepting '
                                           'TCP/IP connections?')


def test_other_errors_pass_unchanged():
    with pytest.raises(KeyError):
        with failing_as("making the service user 'svc'"):
            raise KeyError("group")


def test_a_server_errors_primary_message_is_the_error():
    """PostgreSQL's LINE, DETAIL and HINT lines are left out when it gave a primary message."""
    class Diag:
        message_primary = 'role "postgres" already exists'

    class ServerError(psycopg.Error):
        diag = Diag()

    assert one_line(ServerError('role "postgres" already exists\nDETAIL: ...')) == 'role "postgres" already exists'
