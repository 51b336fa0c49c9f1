"""The `kubernetes` target: OpenBao and PostgreSQL as StatefulSets (`vault`, `postgres`), their
namespace (`namespace`), the manifests they are made of, as pure functions (`manifests`, a module per
concern), the port-forward through which the stack reaches Vault (`port_forward`), and the post-deploy
checks as a Job in the cluster (`checks`). `volumes` keeps the retired single-node profile's node
folders destroyable."""
