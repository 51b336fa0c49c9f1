"""Pulumi dynamic providers (Python) for what no provider plugin manages in the database (Vault's
admin, group roles, service users, the migration stage) and an external Vault's audit devices.

The other modules here are the old names of providers that moved (`components.local.providers`,
`components.vault`): Pulumi keeps a dynamic provider in the state pickled by reference to its
module, so stacks made before read, refresh and delete through these names.
"""
