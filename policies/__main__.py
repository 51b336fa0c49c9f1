"""The dbcreds policy pack: each rule of policies/rules.py as a CrossGuard policy.

Levels and caps per environment: policies/config/<stack>.json, passed with
--policy-pack-config. Mandatory unless a config says otherwise.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import POLICIES

PolicyPack(name="dbcreds-gate", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
