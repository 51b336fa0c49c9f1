"""Pulumi dynamic providers (Python) for what no provider plugin manages: local server processes,
the database's roles and grants on them, the migration stage, the rotation schedule and the
post-deploy checks."""
