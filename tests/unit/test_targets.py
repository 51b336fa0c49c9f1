"""Every target has one shape (stacks/targets.py): the same functions, with the same parameters, and the
same attributes; the table names every target stacks/config.py validates."""

import inspect

import pytest

from stacks.config import TARGETS as TARGET_NAMES
from stacks.targets import TARGETS

FUNCTIONS = ("check_machine", "servers", "exports", "dynamic_users", "drop_dynamic_users", "reaching_vault",
             "left_after_destroy", "rotate_audit", "backups")
ATTRIBUTES = {"DATABASE_LOCATION": str, "AFTER_DOWN": str, "REACHED_AT_OUTPUTS": bool}


def test_the_table_names_every_target():
    assert tuple(TARGETS) == TARGET_NAMES


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_takes_the_same_parameters_on_every_target(name):
    shapes = {kind: [p.kind for p in inspect.signature(getattr(module, name)).parameters.values()]
              for kind, module in TARGETS.items()}
    assert len({tuple(shape) for shape in shapes.values()}) == 1, shapes


def test_each_attribute_is_there_on_every_target():
    for kind, module in TARGETS.items():
        for attribute, kind_of in ATTRIBUTES.items():
            assert isinstance(getattr(module, attribute), kind_of), (kind, attribute)
    # Where the database runs is one of its component's outputs (exported as db_<it>) or nothing.
    assert {m.DATABASE_LOCATION for m in TARGETS.values()} == {"", "container", "pod"}
