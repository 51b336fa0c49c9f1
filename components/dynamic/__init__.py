"""Pulumi dynamic providers (Python) for what no provider plugin manages in the database (Vault's
admin, group roles, service users) and an external Vault's audit devices."""
