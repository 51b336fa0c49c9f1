"""Pulumi dynamic providers (Python) for what no buildable provider plugin covers.

pulumi-tls and pulumi-random cannot be built here (their Go modules are not
served), so the bootstrap CA, certificates and the database bootstrap password
come from these small providers, as issue 2 allows.
"""
