"""The Vault layer, the same on every target: the database secrets engine, the clients' policies
and AppRole access, the database's PKI engine, the Transit store key, and the post-deploy checks
that prove them on every `up`."""
