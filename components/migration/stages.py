"""The stages of an app's move from a password kept in KV to dynamic credentials, as pure functions.

- `static`: the app reads its existing user's password from a KV v2 secret.
- `dual`: it may read that secret and issue dynamic credentials; both log in.
- `dynamic`: the KV secret is destroyed (every version), Vault owns the old
  user as a static role (its password rotated at once), the app issues
  dynamic credentials only.

Forward steps may skip `dual`; `dual` may go back to `static` (the KV
password still works); nothing goes back from `dynamic`: the password it would
put back is dead, and putting it back in KV would revive a leaked secret.
"""

STAGES = ("static", "dual", "dynamic")


def validate_stage(value: object, field: str) -> str:
    """The stage, or a ValueError naming field."""
    if value not in STAGES:
        raise ValueError(f"{field}: must be one of {', '.join(STAGES)}, not {value!r}")
    return value  # type: ignore[return-value]


def stage_change_problem(old: str | None, new: str | None) -> str:
    """Why going from stage old (None: a first `up`) to new is refused; empty when it is not."""
    if new not in STAGES:
        return f"must be one of {', '.join(STAGES)}, not {new!r}"
    if old == "dynamic" and new != "dynamic":
        return (f"cannot go back from 'dynamic' to {new!r}: Vault rotated the static user's password and "
                f"every KV version of it is destroyed; the old password is dead and must not be put back. "
                f"Keep 'dynamic', or start a new migration under another app name")
    return ""
