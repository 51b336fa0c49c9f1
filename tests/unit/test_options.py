import pulumi

from components.options import inherited_depends_on


def _resource() -> pulumi.CustomResource:
    """A resource object never registered: the helper only passes it through."""
    return pulumi.CustomResource.__new__(pulumi.CustomResource)


def test_no_options_or_no_depends_on_means_nothing_to_wait_for():
    assert inherited_depends_on(None) == []
    assert inherited_depends_on(pulumi.ResourceOptions()) == []


def test_a_single_resource_or_a_list_becomes_a_list():
    one, two = _resource(), _resource()
    assert inherited_depends_on(pulumi.ResourceOptions(depends_on=one)) == [one]
    assert inherited_depends_on(pulumi.ResourceOptions(depends_on=[one, two])) == [one, two]
