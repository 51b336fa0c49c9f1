"""The dbcreds policy pack: each rule of policies/rules/ as a CrossGuard policy.

Run from the project root: `pulumi preview --policy-pack policies
[--policy-pack-config <file>]` (`make policy` writes that file for each stack
from its validated config). The pack's modules are imported as `policies.*`,
so the project root goes on the path here, whatever folder the pack is run from.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.pack import POLICIES  # noqa: E402

# Each policy sets its own level (policies/pack.py); this is only their fallback.
PolicyPack(name="dbcreds-gate", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
