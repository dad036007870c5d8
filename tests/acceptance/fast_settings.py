"""tests.settings with a short lease, for worker processes of the crash-recovery acceptance tests."""

from tests.settings import *  # noqa: F403
from tests.settings import DJJOBS

LEASE_SECONDS = 3
HEARTBEAT_INTERVAL = 1
RESCUE_INTERVAL = 1
CANCEL_GRACE_SECONDS = 1  # process mode: kill a child whose job ignores its cancellation for 1 s

DJJOBS = {
    **DJJOBS,
    "LEASE_SECONDS": LEASE_SECONDS,
    "HEARTBEAT_INTERVAL": HEARTBEAT_INTERVAL,
    "RESCUE_INTERVAL": RESCUE_INTERVAL,
    "CANCEL_GRACE_SECONDS": CANCEL_GRACE_SECONDS,
}
