# Python 3.11 (Debian bookworm's, on the PostgreSQL image's root filesystem) with the libraries the
# in-cluster checks and the team apps import (hvac, psycopg, cryptography), copied from the
# virtualenv at their pinned versions (components.docker.images); never pulled. The code it runs
# comes from a ConfigMap at /opt/dbcreds.
FROM scratch
ADD rootfs.tar /
COPY site-packages /usr/local/lib/dbcreds
ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONPATH=/usr/local/lib/dbcreds:/opt/dbcreds \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["/usr/bin/python3"]
