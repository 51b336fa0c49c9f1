"""The gate's rules as plain functions, one module per domain: `(props, config, report)` for one
resource, or `(resources, config, report)` for the stack. `report(message)` records a violation.

- `database_engine`: connections, dynamic and static roles, root rotation, KV passwords beside dynamic roles
- `client_access`: client policies, AppRole, Kubernetes auth
- `vault_servers`: our OpenBao servers, how many nodes and how they unseal, the root token
- `kubernetes_workloads`: hardened workloads, OpenBao's pods spread, the database's namespace isolated
- `docker_containers`: hardened containers, images built here
- `common`: the type tokens, `Report`, `known`

They judge pulumi-vault resources themselves (any team's program, not only
ours) by their engine property names (camelCase). Messages name the resource
field and the fix, never a property's value (props may hold unwrapped
secrets). `config` holds every key of the policy's schema (`policies/pack.py`,
where the defaults are).
"""
