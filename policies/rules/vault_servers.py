"""Our OpenBao servers: TLS on each, and stack-wide how many nodes run, how they unseal, and whether
the stack keeps a root token."""

import re
from typing import Any, Iterable, Mapping

from pulumi_policy.proxy import UnknownValueError

from policies.rules.common import CONFIG_MAP, OPENBAO_INIT, OPENBAO_SERVER, STATEFULSET, Report, is_openbao, known


def vault_server_hardened(props: Mapping[str, Any], _config: Mapping[str, Any], report: Report) -> None:
    """Our OpenBao server resource (`OPENBAO_SERVER`): its listener has a certificate and key.

    At a first preview they are still being made (unknown): that is not a missing one."""
    for key in ("cert_pem", "key_pem"):
        try:
            value = props.get(key)
        except UnknownValueError:
            continue
        if not value:
            report(f"{key} is empty: the Vault server's listener would serve plaintext; give it a TLS "
                   "certificate and key")


# How many OpenBao nodes, and how they unseal (stack-wide)

#: A seal stanza other than Shamir's in OpenBao's HCL config: an auto-unseal.
AUTO_UNSEAL = re.compile(r'^\s*seal\s+"(static|transit|awskms|gcpckms|azurekeyvault|ocikms|pkcs11|kmip)"', re.MULTILINE)


def vault_highly_available(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """Stack: OpenBao runs at least `minNodes` nodes (our local servers, or a StatefulSet's replicas),
    and with `requireAutoUnseal` every node unseals itself (a restarted node must not wait for a
    person with keys)."""
    minimum, auto = int(config["minNodes"]), bool(config["requireAutoUnseal"])
    resources = list(resources)
    servers = [r for r in resources if r.resource_type == OPENBAO_SERVER]
    if servers:
        if len(servers) < minimum:
            report(f"OpenBao runs {len(servers)} node(s): this environment needs at least {minimum} "
                   "(vault_nodes), so that it serves while one is lost")
        if auto and any(known(r.props, "seal") != "static" for r in servers):
            report("OpenBao unseals with Shamir keys: this environment needs an auto-unseal (vault_seal: static)")
    statefulsets = [r for r in resources if r.resource_type == STATEFULSET and is_openbao(r)]
    for statefulset in statefulsets:
        replicas = known(statefulset.props.get("spec") or {}, "replicas")
        if isinstance(replicas, (int, float)) and replicas < minimum:
            report(f"StatefulSet {statefulset.name} runs {int(replicas)} OpenBao replica(s): this environment "
                   f"needs at least {minimum} (vault_nodes)")
    if statefulsets and auto:
        configs = [known(r.props.get("data") or {}, "config.hcl") for r in resources
                   if r.resource_type == CONFIG_MAP and is_openbao(r)]
        if None in configs:
            return  # not known at preview: judged at update
        if not any(isinstance(c, str) and AUTO_UNSEAL.search(c) for c in configs):
            report("OpenBao's config has no auto-unseal seal stanza: this environment needs one (vault_seal: static)")


def vault_no_root_token(resources: Iterable[Any], config: Mapping[str, Any], report: Report) -> None:
    """Stack: with `requireNoRootToken`, the stack keeps no root token: its OpenBao is initialised to
    hand over to an admin policy of the stack's own and revoke the root token (our local servers
    keep theirs)."""
    if not config["requireNoRootToken"]:
        return
    for r in resources:
        if r.resource_type == OPENBAO_SERVER:
            report(f"{r.name}: a local OpenBao server keeps its root token in the stack: this environment keeps "
                   "none (run it on the kubernetes target)")
        elif r.resource_type == OPENBAO_INIT and known(r.props, "keep_root_token") is not False:
            report(f"{r.name}: keeps the root token: this environment hands over to the stack's admin policy and "
                   "revokes it (keep_root_token: false)")
