# Kubernetes' pause (build/pause/linux/pause.c of k8s.io/kubernetes, compiled statically with gcc): the
# sandbox of every pod of the project cluster; never pulled. Context: toolchain/cluster/images.py.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
