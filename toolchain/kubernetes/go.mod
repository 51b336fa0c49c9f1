// Wrapper module for Kubernetes' binaries (k8s.io/kubernetes, main packages
// cmd/...): kube-apiserver and kube-controller-manager, the tests' control
// plane without nodes (the API server dry-runs and stores the kubernetes
// target's objects, the controllers finish their deletion); kube-scheduler,
// kubelet and kube-proxy, which make it the multi-node cluster
// (toolchain/cluster/) that runs pods; kubectl, which `make down` execs into its pods with. k8s.io/kubernetes replaces its staging
// modules (k8s.io/api, k8s.io/apiserver...) with local folders: bootstrap.sh
// replaces each with its published release at the same minor version.
module pulumi-dbcreds/toolchain/kubernetes

go 1.25
