"""Stack config validation: every bad value fails with the field's name."""

import pytest

from stacks.config import ConfigError, StackConfig, validate


def test_defaults():
    assert validate({}, "dev") == StackConfig(
        ca_common_name="dbcreds dev CA", ca_validity_hours=8760, cert_validity_hours=2160
    )


def test_numbers_given_as_strings_are_read():
    config = validate({"ca_validity_hours": "100", "cert_validity_hours": "10"}, "dev")
    assert (config.ca_validity_hours, config.cert_validity_hours) == (100, 10)


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"ca_common_name": ""}, "ca_common_name"),
        ({"ca_common_name": "   "}, "ca_common_name"),
        ({"ca_common_name": "x" * 65}, "ca_common_name"),
        ({"ca_validity_hours": 0}, "ca_validity_hours"),
        ({"ca_validity_hours": -5}, "ca_validity_hours"),
        ({"ca_validity_hours": "1h"}, "ca_validity_hours"),
        ({"ca_validity_hours": True}, "ca_validity_hours"),
        ({"ca_validity_hours": 87601}, "ca_validity_hours"),
        ({"cert_validity_hours": 0}, "cert_validity_hours"),
        # A certificate cannot outlive the CA that signs it.
        ({"ca_validity_hours": 10, "cert_validity_hours": 11}, "cert_validity_hours"),
    ],
)
def test_bad_values_name_the_field(raw, field):
    with pytest.raises(ConfigError) as error:
        validate(raw, "dev")
    assert error.value.field == field
    assert str(error.value).startswith(f"config {field}: ")
