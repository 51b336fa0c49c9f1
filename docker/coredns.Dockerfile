# CoreDNS (go install github.com/coredns/coredns, static), the project cluster's DNS; never pulled.
# Context: toolchain/cluster/images.py; its Corefile comes from a ConfigMap.
FROM scratch
COPY coredns /coredns
USER 65532:65532
ENTRYPOINT ["/coredns"]
