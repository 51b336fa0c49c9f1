"""The local target: OpenBao, PostgreSQL and CockroachDB as processes on 127.0.0.1 (`vault_server`,
`postgres_server`, `cockroach_node`), with their dynamic providers (`providers/`)."""
