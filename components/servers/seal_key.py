"""The static seal's key, made by the stack: SEAL_KEY_BYTES of randomness, base64, as OpenBao's static
seal reads it from a file.

Made from pulumi-random's `RandomPassword` (64 letters and digits, about 380 bits) through SHA-256, and
secret everywhere in the state. Not `RandomBytes`: the state keeps a resource's id in plaintext, and
RandomBytes' id is its value.
"""

import base64
import hashlib

import pulumi
import pulumi_random as random

from components.servers.openbao import SEAL_KEY_BYTES


def key_from_password(password: str) -> str:
    """SEAL_KEY_BYTES (SHA-256's size), base64: the key a random password stands for."""
    digest = hashlib.sha256(password.encode()).digest()
    assert len(digest) == SEAL_KEY_BYTES
    return base64.b64encode(digest).decode()


def static_seal_key(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A new key (secret), its randomness the child `name` of parent."""
    password = random.RandomPassword(name, length=64, special=False, opts=pulumi.ResourceOptions(parent=parent))
    return pulumi.Output.secret(password.result.apply(key_from_password))
