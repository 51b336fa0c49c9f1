"""The old name of `components.kubernetes.volumes`.

Pulumi keeps a dynamic provider in the state pickled by reference to its
module: stacks whose node volumes were made under this name read, refresh and
delete them through it.
"""

from components.kubernetes.volumes import _NodeFolderProvider  # noqa: F401
