"""The local servers' dynamic providers: one declarative base (`local_server`) that OpenBao,
PostgreSQL and CockroachDB configure, and the keeper that starts a stopped server again."""
