"""The composition root: builds every component, wires them, starts and stops them.

Owns the order of start and stop and nothing else: no rule lives here. Layer: imports
cluster and everything below; only tools and cli import it.
"""

from streamproc.daemon.core import Daemon

__all__ = ["Daemon"]
