// Wrapper module for kube-apiserver and kube-controller-manager
// (k8s.io/kubernetes, main packages cmd/...), which the tests run as a
// control plane without nodes: the API server dry-runs and stores the
// kubernetes target's objects, the garbage collector and namespace
// controllers finish their deletion. k8s.io/kubernetes replaces its staging
// modules (k8s.io/api, k8s.io/apiserver...) with local folders: bootstrap.sh
// replaces each with its published release at the same minor version.
module pulumi-dbcreds/toolchain/kubernetes

go 1.25
