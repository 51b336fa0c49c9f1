"""The `kubernetes` target: OpenBao and PostgreSQL as StatefulSets (`vault`, `postgres`), their
namespace (`namespace`), the single-node profile's local volumes (`volumes`), and the manifests they
are made of, as pure functions (`manifests`)."""
