"""What runs inside the PostgreSQL image built here (`docker/postgres.Dockerfile`: Debian's
postgresql-15, the postgres account at POSTGRES_UID), wherever it runs: a container of the docker target, a
pod of the kubernetes target.

The server's files come from outside the image: the config, the bootstrap SQL and
the scripts under BOOTSTRAP, the TLS files and the admin's first password copied
into RUN by a start script, the cluster on a volume at DATA.
"""

from components.servers.postgres import SUPERUSER

#: The postgres account's uid and gid in the image (the official image's): pods run as it by number.
POSTGRES_UID = 999
DATA = "/var/lib/postgresql/data"
PGDATA = f"{DATA}/pgdata"
#: The socket and the TLS files, in memory, handed to the postgres user at every start.
RUN = "/run/postgresql"
BOOTSTRAP = "/bootstrap"

POSTGRES_SCRIPT = f"""#!/bin/sh
# As postgres: a new volume gets a cluster and the bootstrap SQL (over the socket only), then the server.
set -eu
if [ ! -s {PGDATA}/PG_VERSION ]; then
  initdb --pgdata {PGDATA} --username {SUPERUSER} --auth-local peer --auth-host scram-sha-256 \\
    --encoding UTF8 --locale C.UTF-8 >/dev/null
  pg_ctl --pgdata {PGDATA} --wait --silent \\
    --options "-c listen_addresses='' -c unix_socket_directories={RUN}" start
  psql --host {RUN} --username {SUPERUSER} --dbname postgres --quiet -v ON_ERROR_STOP=1 \\
    -v admin_password="$(cat {RUN}/admin-password)" --file {BOOTSTRAP}/bootstrap.sql
  pg_ctl --pgdata {PGDATA} --wait --silent --mode fast stop
fi
rm -f {RUN}/admin-password
exec postgres -D {PGDATA} -c config_file={BOOTSTRAP}/postgresql.conf -c hba_file={BOOTSTRAP}/pg_hba.conf \\
  -c ident_file={BOOTSTRAP}/pg_ident.conf
"""


def pod_start_script(tls_dir: str, password_file: str) -> str:
    """A Kubernetes pod's start, as the postgres user (the pod runs as it): the TLS files and, for a
    new volume, the admin's first password, from their Secrets' read-only mounts (readable through the
    pod's fsGroup) into RUN, with the modes PostgreSQL demands; then POSTGRES_SCRIPT."""
    return f"""#!/bin/sh
set -eu
install -m 0644 {tls_dir}/tls.crt {RUN}/server.crt
install -m 0600 {tls_dir}/tls.key {RUN}/server.key
if [ ! -s {PGDATA}/PG_VERSION ]; then
  install -m 0400 {password_file} {RUN}/admin-password
fi
exec /bin/sh {BOOTSTRAP}/postgres.sh
"""
