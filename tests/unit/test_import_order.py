"""What Django imports before its app registry is ready must not import a model.

djjobs is imported from INSTALLED_APPS, and its backend whenever a task is declared (perhaps
while the apps load). These modules import the models inside the functions that use them;
everywhere else the models are imported at the top (issue 14: imports inside functions only
where Django's app loading needs them).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys

from django.conf import settings

settings.INSTALLED_APPS  # the settings are loaded; django.setup() is not called
import djjobs, djjobs.apps, djjobs.backend, djjobs.tasks, djjobs.triggers  # noqa: E401

print(" ".join(sorted(name for name in sys.modules if name.startswith("djjobs.models"))))
"""


def test_djjobs_and_its_backend_import_before_the_apps_are_ready():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # no model module was imported
