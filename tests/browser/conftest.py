"""Real-browser tests: Debian's headless Chromium, driven by Playwright, against pytest-django's
``live_server`` (a transactional test database: the server thread sees what the test writes).

Skipped, with the reason, where ``/usr/bin/chromium`` or the ``playwright`` package is missing
(``apt-get install chromium``; ``pip install playwright``, never ``playwright install``: the
system browser is used). Each test saves screenshots into ``screenshots/`` (git-ignored).
"""

import os
from pathlib import Path

import django
import pytest
from django.test.utils import override_settings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM = os.environ.get("DJJOBS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "browser-pw"


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests need the playwright package (pip install playwright; the system Chromium is used)"
    return None


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """The admin's and djjobs' static files where the live server serves them (STATIC_ROOT at
    STATIC_URL): the test settings have no staticfiles app, and the screenshots need the CSS."""
    import djjobs

    root = tmp_path_factory.mktemp("static")
    (root / "admin").symlink_to(Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin")
    (root / "djjobs").symlink_to(Path(djjobs.__file__).parent / "static" / "djjobs")
    override = override_settings(STATIC_URL="/static/", STATIC_ROOT=str(root))
    override.enable()
    yield root
    override.disable()


@pytest.fixture(scope="module")
def browser(static_root):
    """One Chromium per module. While Playwright's event loop runs in this thread, Django
    takes the thread for async code and refuses ORM calls; the tests' own ORM calls are
    synchronous, hence DJANGO_ALLOW_ASYNC_UNSAFE for exactly that time."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def server(static_root, live_server):
    """The live server's URL; static files are set up before it starts."""
    return live_server.url


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=server)
    context.set_default_timeout(15_000)
    # The admin's navigation sidebar folded away: the screens get the whole width.
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)


@pytest.fixture
def logged_in(page, admin_user):
    """A page logged in through the admin's login form."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


@pytest.fixture(scope="session")
def shoot():
    """shoot(page, name): a full-page PNG in screenshots/<name>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def shoot(page, name):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot
