"""A simulated DLI API over real HTTP, for the demo, the tests and the benchmark.

It shares no code with the exporter's DLI side (client, signer or parser), so it cannot share
their mistakes: signatures are verified by its own implementation of SDK-HMAC-SHA256, from the
algorithm's description. It serves the list-jobs API (paging, order, filters, ``show_detail``),
the queue list (``queue_type``, SQL queues by default), IAM password login and IAM's list of the
account's projects (:mod:`.iam`), evolves its jobs
over time (statuses change, restarts go up) and has fault knobs for tests, each for the jobs or
the queues: latency, error answers on given pages, 429 with Retry-After, truncated JSON, hangs,
dropped connections and expired tokens. It is never kinder than the documented API:
each view carries only its own fields, and its gateway locks keys after failed authentications
and throttles per window (:mod:`.gateway`).

The exporter imports it only for ``--demo``. Run it alone with ``python -m exporter.simulator --help``.

* :mod:`.service`: the simulated service, its state and fault knobs;
* :mod:`.model`: faults to inject, and requests as recorded;
* :mod:`.handler`: the HTTP handler;
* :mod:`.signature`: the server side of SDK-HMAC-SHA256;
* :mod:`.gateway`: the API gateway's key lock-out and throttling;
* :mod:`.iam`: the account and its projects, as IAM lists them;
* :mod:`.data`: the demo's and the benchmarks' jobs.
"""

from .data import (
    DEMO_AK,
    DEMO_DENIED,
    DEMO_NAMES,
    DEMO_OTHERS,
    DEMO_PROJECTS,
    DEMO_REGIONS,
    DEMO_SK,
    FULL_QUEUE,
    JOB_TYPES,
    QUEUES,
    RUN_MODES,
    STATUSES,
    demo_account,
    demo_projects,
    demo_queues,
    make_job,
    queues_for,
    synthetic_projects,
)
from .gateway import Gateway
from .iam import Account, project
from .model import Fault, Recorded
from .service import Simulator
from .signature import sign_request

__all__ = ["DEMO_AK", "DEMO_DENIED", "DEMO_NAMES", "DEMO_OTHERS", "DEMO_PROJECTS", "DEMO_REGIONS", "DEMO_SK",
           "FULL_QUEUE", "JOB_TYPES", "QUEUES", "RUN_MODES", "STATUSES", "Account", "Fault", "Gateway", "Recorded",
           "Simulator", "demo_account", "demo_projects", "demo_queues", "make_job", "project", "queues_for",
           "sign_request", "synthetic_projects"]
