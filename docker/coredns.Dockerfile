# CoreDNS (go install github.com/coredns/coredns, static), the test cluster's DNS; never pulled.
# Context: tests/support/cluster_images.py; its Corefile comes from a ConfigMap.
FROM scratch
COPY coredns /coredns
USER 65532:65532
ENTRYPOINT ["/coredns"]
