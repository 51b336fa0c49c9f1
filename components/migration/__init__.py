"""An application's move from a database password kept in Vault's KV store to dynamic credentials:

- `stages`: the stages (`static`, `dual`, `dynamic`) and which changes are refused, as pure functions;
- `stage_resource`: the stage as a resource, so that a step back fails at preview;
- `static_to_dynamic`: the component, `StaticToDynamic`, that makes each stage's resources and checks.
"""
