"""Resource options shared by the components."""

from typing import Optional

import pulumi


def inherited_depends_on(opts: Optional[pulumi.ResourceOptions]) -> list:
    """What a component's children must wait for: the component's own `depends_on`.

    Pulumi does not pass a component's `depends_on` down to its children, so a
    child would otherwise be created (or deleted) without waiting for it.
    """
    if opts is None or opts.depends_on is None:
        return []
    return list(opts.depends_on) if isinstance(opts.depends_on, (list, tuple)) else [opts.depends_on]


def register_outputs(component: pulumi.ComponentResource, outputs: dict[str, pulumi.Output]) -> None:
    """Sets each output as an attribute of the component and registers them all."""
    for key, value in outputs.items():
        setattr(component, key, value)
    component.register_outputs(outputs)
