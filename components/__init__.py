"""Reusable Pulumi components for a Vault dynamic-database-credentials stack."""
