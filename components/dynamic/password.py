"""A random password, the accepted fallback for pulumi-random's RandomPassword."""

import secrets
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

MIN_LENGTH = 16


class _PasswordProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        # URL-safe characters: the password may end up in a connection URL.
        value = secrets.token_urlsafe(int(props["length"]))[: int(props["length"])]
        return CreateResult(id_=secrets.token_hex(8), outs={"length": props["length"], "result": value})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("length") != news.get("length")
        return DiffResult(changes=changed, replaces=["length"] if changed else [])


class RandomPassword(Resource):
    """A password drawn from `secrets` once, at create; `result` is a secret."""

    result: pulumi.Output[str]

    def __init__(self, name: str, length: int = 32, opts: Optional[pulumi.ResourceOptions] = None):
        if length < MIN_LENGTH:
            raise ValueError(f"RandomPassword {name}: length must be at least {MIN_LENGTH}, got {length}")
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["result"]))
        super().__init__(_PasswordProvider(), name, {"length": length, "result": None}, opts)
