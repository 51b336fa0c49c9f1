# rancher's local-path-provisioner (go install github.com/rancher/local-path-provisioner, static), the
# project cluster's default StorageClass; never pulled. Its helper pods run the PostgreSQL image (a shell).
# Context: toolchain/cluster/images.py.
FROM scratch
COPY local-path-provisioner /usr/bin/local-path-provisioner
USER 65532:65532
ENTRYPOINT ["/usr/bin/local-path-provisioner"]
