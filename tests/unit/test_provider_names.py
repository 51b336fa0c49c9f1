"""Dynamic providers are kept in the state by their module's name: a moved module keeps its old name."""

def test_a_provider_recorded_under_a_moved_modules_old_name_still_loads():
    """A stack made before the Kubernetes modules moved has its node volumes' provider recorded as
    components.kubernetes_volumes._NodeFolderProvider: its refresh and destroy must still load it."""
    import base64

    import dill
    from pulumi.dynamic.dynamic import serialize_provider

    from components.kubernetes.volumes import _NodeFolderProvider

    now = base64.b64decode(serialize_provider(_NodeFolderProvider()))
    recorded = now.replace(b"\x8c\x1dcomponents.kubernetes.volumes", b"\x8c\x1dcomponents.kubernetes_volumes")
    assert recorded != now
    assert type(dill.loads(recorded)) is _NodeFolderProvider
