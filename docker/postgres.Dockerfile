# PostgreSQL 15 on a Debian bookworm root filesystem made by debootstrap with
# postgresql-15 installed in it (components.docker.images builds it once, cached
# outside the work tree); never pulled. Built by components.docker.postgres.
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
