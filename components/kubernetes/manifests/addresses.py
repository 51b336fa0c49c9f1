"""Where each server is reached in the cluster: its Service's and its pods' host names, and the names
its certificate must carry."""

#: The cluster's DNS domain: a pod's full name ends with it.
CLUSTER_DOMAIN = "cluster.local"


def service_host(service_name: str, namespace: str) -> str:
    return f"{service_name}.{namespace}.svc"


def internal_service(instance: str) -> str:
    """The headless Service that names each pod of a StatefulSet."""
    return f"{instance}-internal"


def pod_names(instance: str, replicas: int) -> list[str]:
    """A StatefulSet's pods' names, in order."""
    return [f"{instance}-{i}" for i in range(replicas)]


def pod_host(instance: str, index: int, namespace: str) -> str:
    """Pod `index` of a StatefulSet, through its headless Service."""
    return f"{instance}-{index}.{internal_service(instance)}.{namespace}.svc"


def server_dns_names(namespace: str, instance: str, replicas: int = 1) -> tuple[str, ...]:
    """The names a server's certificate must carry: its Service, each pod of its StatefulSet, and
    localhost (in the pod)."""
    pods = [pod_host(instance, i, namespace) for i in range(replicas)]
    service_name = service_host(instance, namespace)
    return (service_name, f"{service_name}.{CLUSTER_DOMAIN}", instance, f"{instance}.{namespace}", *pods,
            *(f"{pod}.{CLUSTER_DOMAIN}" for pod in pods), "localhost")
