"""The static seal's key: 32 bytes, base64, from a random password; never a value the state shows."""

import base64

from components.servers.openbao import SEAL_KEY_BYTES
from components.servers.seal_key import key_from_password


def test_a_password_stands_for_a_key_of_the_seals_size():
    key = key_from_password("a" * 64)
    assert len(base64.b64decode(key, validate=True)) == SEAL_KEY_BYTES
    assert key_from_password("b" * 64) != key and key_from_password("a" * 64) == key
