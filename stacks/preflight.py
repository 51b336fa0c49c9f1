"""The root program's preflight: what a stack's validated config needs of this machine (a binary, files,
a cluster, a Docker engine), checked before the program makes anything. stacks/config.py only reads and
validates; each target's module looks at the machine (its `check_machine`). Its errors are
ConfigErrors all the same, naming the field to fix."""

from stacks import targets
from stacks.config import StackConfig


def check_machine(config: StackConfig) -> None:
    """What the config needs of this machine, checked before the program makes anything.

    The servers' own checks find these too, but only when their resource comes
    up, after `pulumi up` may have made the resources before it.
    """
    targets.of(config).check_machine(config)
