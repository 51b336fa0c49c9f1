"""What the components make when their args leave it out, written once: the args classes and the
stack config's defaults (stacks/defaults.py) read these. Standard library only."""

#: The application database.
DATABASE = "app"
#: The non-superuser admin Vault connects as (CREATEROLE, owner of the database).
DB_ADMIN = "dbcreds_admin"
#: Group roles are named <prefix>_<grant spec>; dynamic users join them.
GROUP_PREFIX = "dbcreds_group"
#: A team's roles (its group, its Vault connection's user) and its functions' schema start with this.
TEAM_PREFIX = "dbcreds_team"
#: The bootstrap CA's lifetime, and its servers' certificates'.
CA_VALIDITY_HOURS = 24 * 365
CERT_VALIDITY_HOURS = 24 * 90
