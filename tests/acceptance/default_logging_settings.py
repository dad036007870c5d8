"""The test settings without LOGGING: run_workers logs as it does out of the box."""

from tests.settings import *  # noqa: F403

del LOGGING  # noqa: F821
