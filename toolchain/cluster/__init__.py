"""The project's Kubernetes cluster (`make cluster-up`, docs/cluster.md): cluster.py starts and stops
it, net.py its network namespaces, pki.py its certificates, images.py the images its nodes hold,
addons.py what it runs as pods.

Imports nothing: the Makefile runs net.py with the machine's python3 before the virtualenv exists.
"""
