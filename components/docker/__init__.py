"""The `docker` target: OpenBao and PostgreSQL as containers of a Docker engine on this host."""
