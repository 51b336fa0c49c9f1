"""What the dynamic providers of local server processes share."""

import shutil
from typing import Any

from pulumi.dynamic import ResourceProvider


class LocalServerProvider(ResourceProvider):
    """A provider whose resource is a server process with a data folder (see `server`)."""

    @staticmethod
    def server(props: dict[str, Any]):
        """The server these props describe: it has `stop()` and `data_dir`."""
        raise NotImplementedError

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Stops the server and removes its data folder: nothing of it is left."""
        server = self.server(props)
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
