"""The grant specs and probe statements the checks tests use (the dev stack's reader and app)."""

from components.checks import ClientCheck
from components.grants import GrantSpec, ServiceUser

READER = GrantSpec(name="reader", privileges=("SELECT",), schemas=("public",), default_ttl=600, max_ttl=3600)
APP = GrantSpec(name="app", privileges=("SELECT", "INSERT", "UPDATE", "DELETE"),
                tables=("public.users", "public.orders"), default_ttl=600, max_ttl=3600)

SERVICE_USER = ServiceUser("svc_reporting", "reader", 86400)

READER_ALLOWED = ["SELECT count(*) FROM users", "SELECT count(*) FROM orders"]
READER_FORBIDDEN = ["INSERT INTO users (name, email) VALUES ('x', 'x@example.com')", "DELETE FROM orders",
                    "CREATE TABLE public.evil (id int)"]
APP_ALLOWED = ["INSERT INTO users (name, email) VALUES ('check', 'check@example.com')",
               "UPDATE users SET name = name", "DELETE FROM orders WHERE id < 0", "SELECT count(*) FROM users"]
APP_FORBIDDEN = ["TRUNCATE orders", "CREATE TABLE public.evil (id int)", "CREATE ROLE evil"]


def client_checks(clients, reader_forbidden=READER_FORBIDDEN):
    return [
        ClientCheck("reader", "approle", clients["reader"].role_id, clients["reader"].secret_id,
                    clients["reader"].creds_path, READER_ALLOWED, reader_forbidden),
        ClientCheck("app", "approle", clients["app"].role_id, clients["app"].secret_id,
                    clients["app"].creds_path, APP_ALLOWED, APP_FORBIDDEN),
    ]


