"""How OpenBao, PostgreSQL and CockroachDB are run and reached, whatever target runs them: their
binaries and config files, processes, OpenBao's initialisation and unsealing through its API,
the PostgreSQL image's layout, a Docker engine's containers, the keeper that starts a stopped
server again, and the stack's one way into a database (`database_access`)."""
