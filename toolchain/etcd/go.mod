// A single-member etcd for the tests' kube-apiserver, embedded from
// go.etcd.io/etcd/server/v3 (its own binary's module is not served).
module pulumi-dbcreds/toolchain/etcd

go 1.25
