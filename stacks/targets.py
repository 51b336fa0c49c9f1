"""The targets, one module each, every one with the same shape; the root program, `make down` and the
tools pick the module by the stack's `target` (`of`) and call these:

- `check_machine(config)`: what the config needs of this machine, before the program makes anything
  (a ConfigError naming the field; stacks/preflight.py);
- `servers(config) -> Servers`: its Vault server, its database and the Vault provider on that Vault
  (stacks/servers.py), for the root program;
- `exports(config, servers) -> dict`: the outputs only this target has;
- `DATABASE_LOCATION`: the database component's attribute naming where it runs (`container`, `pod`;
  empty: reached by address), exported as `db_<it>`;
- `dynamic_users(config, location, query)` and `drop_dynamic_users(config, location, users)`: the
  database's dynamic users, as its superuser (the external target: its stack admin);
- `reaching_vault(config)`: a context in which this machine reaches the stack's Vault, and
  `REACHED_AT_OUTPUTS`, whether its servers answer at its outputs' addresses with nothing held open;
- `left_after_destroy(config, say) -> list[str]`: what of a destroyed stack is left, named; and
  `AFTER_DOWN`, what `make down` says is left when nothing is;
- `rotate_audit(config, keep) -> list[str]`: `make rotate-audit`: each of its OpenBao servers moves its
  audit log aside and reopens it, losing no line, keeping the `keep` newest moved logs; the moved
  files, named (an AuditRotationError, saying why, where the target does not).
- `backups(config) -> ServerBackups`: `make backup` and `make restore`: the database's dump, what a
  restore would overwrite, and the restore's server steps (stacks/backups.py); a BackupError saying
  why in one line where the target's servers are not backed up here.

A new target is a module of this shape, a row below and its settings in stacks/config.py.
"""

from types import ModuleType

from stacks import docker_target, external_target, kubernetes_target, local_target
from stacks.config import StackConfig

#: By stacks/config.py's TARGETS.
TARGETS: dict[str, ModuleType] = {"local": local_target, "docker": docker_target, "kubernetes": kubernetes_target,
                                  "external": external_target}


def of(config: StackConfig) -> ModuleType:
    """The module of the stack's target."""
    return TARGETS[config.target.kind]
