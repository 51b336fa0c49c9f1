# make up     brings the dev stack up (bootstraps first when needed)
# make test   bootstraps, then runs every test
# make env    prints the shell variables for the built `pulumi`: eval "$(make -s env)"
STACK ?= dev
ENV = eval "$$(python3 toolchain/env.py)"
# A lock left by a killed `pulumi` run on this host would block every command.
UNLOCK = python3 -m toolchain.recover $(STACK)

.PHONY: bootstrap env up down preview test unit clean

bootstrap:
	@bash toolchain/bootstrap.sh

env:
	@python3 toolchain/env.py

# Creates the stack on the local file backend the first time.
up: bootstrap
	@$(ENV) && $(UNLOCK) && (pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK) --secrets-provider passphrase) \
	  && pulumi up --stack $(STACK) --yes --skip-preview

preview: bootstrap
	@$(ENV) && $(UNLOCK) && pulumi preview --stack $(STACK)

down: bootstrap
	@$(ENV) && $(UNLOCK) && if pulumi stack select $(STACK) 2>/dev/null; then \
	  pulumi destroy --stack $(STACK) --yes --skip-preview && pulumi stack rm $(STACK) --yes --preserve-config; fi

test: bootstrap
	@$(ENV) && .venv/bin/python -m pytest

unit: bootstrap
	@$(ENV) && .venv/bin/python -m pytest tests/unit

# Removes this checkout's venv, tool links and local state; the build cache stays.
clean:
	rm -rf .venv .tools .pulumi
