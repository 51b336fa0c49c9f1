"""What the dynamic providers of local server processes share."""

import shutil
from typing import Any, Callable, TypeVar

from pulumi.dynamic import ResourceProvider


T = TypeVar("T")


class LocalServerProvider(ResourceProvider):
    """A provider whose resource is a server process with a data folder (see `server`)."""

    @staticmethod
    def server(props: dict[str, Any]):
        """The server these props describe: it has `stop()` and `data_dir`."""
        raise NotImplementedError

    def create_fresh(self, props: dict[str, Any], build: Callable[[Any], T]) -> T:
        """Runs build(server) in an empty data folder; if it fails, stops the server and removes the folder.

        A failed create records nothing in the state, so a process left running
        would leak past `pulumi destroy`. A folder with data in it is never
        touched: it may hold another server's data.
        """
        server = self.server(props)
        if server.data_dir.exists() and any(server.data_dir.iterdir()):
            raise RuntimeError(f"data folder {server.data_dir} is not empty: it may hold another server's data; "
                               "remove it or choose another data_dir")
        try:
            return build(server)
        except BaseException:
            server.stop()
            shutil.rmtree(server.data_dir, ignore_errors=True)
            raise

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Stops the server and removes its data folder: nothing of it is left."""
        server = self.server(props)
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
