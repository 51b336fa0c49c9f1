# make up     brings the dev stack up (bootstraps what it needs first)
# make test   bootstraps everything, then runs every test
# make down   revokes every lease, proves none is left, destroys the stack
# make drift  exits 1 naming what differs when anything but the post-deploy checks would change (CI, after up)
# make rotate-audit  moves each OpenBao node's audit log aside and reopens it, local, docker and kubernetes (KEEP=14 kept)
# make backup / restore  a local or docker stack's encrypted backup into BACKUP_DIR; restore FROM=<file> (FORCE=yes
#                        over servers that still run), proved by an up (docs/operations.md)
# make policy the policy gate (pulumi preview --policy-pack policies) on every stack
# make env    prints the shell variables for the built `pulumi`: eval "$(make -s env)"
# make cluster-up / cluster-down   a Kubernetes cluster of NODES nodes (3) with a pod network, in network
#                                  namespaces of the project's (.data/cluster; docs/cluster.md)
STACK ?= dev
NODES ?= 3
CLUSTER_DIR ?= .data/cluster
# Exports the built toolchain's variables, failing if env.py fails.
ENV = env_vars=$$(python3 toolchain/env.py) && eval "$$env_vars"
# A lock left by a killed `pulumi` run on this host would block every command.
UNLOCK = python3 -m toolchain.recover $(STACK)
# Runs a command with this checkout's encryptionsalt in Pulumi.$(STACK).yaml, and only then.
ON_STACK = python3 -m toolchain.stack_file $(STACK) --

.PHONY: bootstrap bootstrap-stack bootstrap-kubernetes bootstrap-all env up down preview drift rotate-audit backup restore policy test unit clean \
	cluster-up cluster-down

# What every local stack needs: virtualenv, PostgreSQL, CLI, language host, provider plugins.
bootstrap:
	@bash toolchain/bootstrap.sh core

# What STACK needs (the Kubernetes provider too when its target is kubernetes).
bootstrap-stack:
	@bash toolchain/bootstrap.sh stack $(STACK)

# The Kubernetes provider and the tests' Kubernetes control plane.
bootstrap-kubernetes:
	@bash toolchain/bootstrap.sh kubernetes

# Everything: Kubernetes's parts, the cluster's (make cluster-up), and the docker target's engine, provider and images.
bootstrap-all:
	@bash toolchain/bootstrap.sh all

env:
	@python3 toolchain/env.py

# Creates the stack on the local file backend the first time. Refreshes first (toolchain/up.py), so
# what was changed by hand in Vault or the database is seen and put back.
up: bootstrap-stack
	@$(ENV) && $(ON_STACK) sh -c '$(UNLOCK) && (pulumi stack select $(STACK) 2>/dev/null \
	  || pulumi stack init $(STACK) --secrets-provider passphrase) && .venv/bin/python -m toolchain.up $(STACK)'

# What make up would do, drift included.
preview: bootstrap-stack
	@$(ENV) && $(ON_STACK) sh -c '$(UNLOCK) && .venv/bin/python -m toolchain.up $(STACK) --preview'

# Refreshes, then fails naming each resource that differs from the program (the checks aside).
drift: bootstrap-stack
	@$(ENV) && $(ON_STACK) sh -c '$(UNLOCK) && .venv/bin/python -m toolchain.drift $(STACK)'

down: bootstrap-stack
	@$(ENV) && $(ON_STACK) sh -c '$(UNLOCK) && .venv/bin/python -m toolchain.down $(STACK)'

# Each local OpenBao node's audit log moved aside and reopened, no line lost; KEEP moved logs kept.
rotate-audit: bootstrap-stack
	@$(ENV) && $(ON_STACK) .venv/bin/python -m toolchain.rotate_audit $(STACK) '$(KEEP)'

# A local or docker stack's OpenBao raft snapshot, database dump and state export in one encrypted file (0600) in
# BACKUP_DIR (.data/backups/STACK); its path is the last line printed.
backup: bootstrap-stack
	@$(ENV) && $(ON_STACK) .venv/bin/python -m toolchain.backup backup $(STACK) '$(BACKUP_DIR)'

# The stack brought back from FROM, a backup's file: state, PostgreSQL, OpenBao, then an up that proves it.
# Refused over servers, data or state the stack still has, naming them, unless FORCE=yes.
restore: bootstrap-stack
	@$(ENV) && $(ON_STACK) .venv/bin/python -m toolchain.backup restore $(STACK) '$(FROM)' '$(FORCE)'

# Every stack file (prod's kubernetes target included), each with its own config for the gate.
policy: bootstrap-all
	@$(ENV) && .venv/bin/python -m toolchain.policy_gate

# The gate first, then every test.
test: bootstrap-all
	@$(ENV) && .venv/bin/python -m toolchain.policy_gate && .venv/bin/python -m pytest

unit: bootstrap
	@$(ENV) && .venv/bin/python -m pytest tests/unit

# The cluster (toolchain/cluster/, docs/cluster.md): `make cluster-up NODES=3` (NODES checked
# before anything is built); the last line it prints is the kubeconfig's path. `make cluster-down`.
cluster-up:
	@python3 -m toolchain.cluster.net nodes '$(NODES)' && bash toolchain/bootstrap.sh cluster \
	  && .venv/bin/python -m toolchain.cluster.cluster up '$(CLUSTER_DIR)' --nodes '$(NODES)'

cluster-down:
	@.venv/bin/python -m toolchain.cluster.cluster down '$(CLUSTER_DIR)'

# Removes this checkout's venv, tool links and local state; the build cache stays. Refused while a
# stack still has resources (its Vault keys live only in the state): CONFIRM=yes deletes them anyway.
clean:
	@python3 -m toolchain.clean $(CONFIRM)
