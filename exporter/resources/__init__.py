"""The resources the exporter reads, each what one API list gives (see :mod:`.base`).

Registered here, one line each: the sweeper reads every resource registered (and switched on) of
every target, the collector renders each one's table, the settings read each one's switch, and
``--check`` reads each one's requests. The order is the order of the exposition.
"""

from __future__ import annotations

from . import jobs, queues
from .base import Options, Resource, Source, Switch

REGISTERED: tuple[Resource, ...] = (
    jobs.RESOURCE,
    queues.RESOURCE,
)

__all__ = ["REGISTERED", "Options", "Resource", "Source", "Switch"]
