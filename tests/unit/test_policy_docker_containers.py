"""The docker target's rules (policies/rules/docker_containers.py): hardened containers, images built
here. Each mutation of the happy path (tests/unit/policy.py) is caught."""

import pytest
from pulumi_policy import StackValidationArgs

from policies.rules import common
from tests.unit.policy import BY_NAME, CONTAINER_PROPS, assert_caught, changed, resource, violations

CASES = [
    ("docker-container-hardened", common.CONTAINER, "privileged", True, "privileged is true"),
    ("docker-container-hardened", common.CONTAINER, "capabilities.drops", [], "drop every capability"),
    ("docker-container-hardened", common.CONTAINER, "capabilities.adds", ["CHOWN", "SYS_ADMIN"], "SYS_ADMIN"),
    ("docker-container-hardened", common.CONTAINER, "securityOpts", None, "no-new-privileges"),
    ("docker-container-hardened", common.CONTAINER, "pidMode", "host", "pidMode is host"),
    ("docker-container-hardened", common.CONTAINER, "volumes",
     [{"hostPath": "/etc", "containerPath": "/etc"}], "host path /etc"),
]


@pytest.mark.parametrize("policy, resource_type, path, value, expected", CASES)
def test_each_violation_is_caught_with_a_message_naming_the_field(policy, resource_type, path, value, expected):
    assert_caught(policy, resource_type, path, value, expected)


def test_a_host_path_under_the_stacks_data_folder_may_be_mounted():
    props = changed(CONTAINER_PROPS, "volumes", [{"hostPath": "/srv/stack/data/x", "containerPath": "/x"}])
    assert violations("docker-container-hardened", common.CONTAINER, props,
                      {"allowedHostPaths": ["/srv/stack/data"]}) == []
    props = changed(CONTAINER_PROPS, "volumes", [{"hostPath": "/srv/stack/database", "containerPath": "/x"}])
    assert violations("docker-container-hardened", common.CONTAINER, props,
                      {"allowedHostPaths": ["/srv/stack/data"]})


def test_containers_run_only_images_the_stack_builds():
    policy = BY_NAME["docker-images-built-here"]

    def judged(*resources) -> list[str]:
        found: list[str] = []
        policy.validate(StackValidationArgs(list(resources), {}), lambda m, urn=None: found.append(m))
        return found

    image = resource(common.IMAGE, "db-image", {"imageName": "dbcreds-postgres:1", "repoDigest": "sha256:0123",
                                               "skipPush": True})
    container = resource(common.CONTAINER, "db-container", CONTAINER_PROPS)
    assert judged(image, container) == []
    pulled = resource(common.CONTAINER, "db-container", {**CONTAINER_PROPS, "image": "postgres:15"})
    assert any("not one the stack builds" in m for m in judged(image, pulled))
    assert any("skipPush" in m for m in judged(resource(common.IMAGE, "db-image", {
        "imageName": "dbcreds-postgres:1", "repoDigest": "sha256:0123", "skipPush": False}), container))
    assert any("pulls from a registry" in m for m in judged(
        image, container, resource(common.REMOTE_IMAGE, "pg", {"name": "postgres:15"})))
