"""Template tags of djjobs' admin screens."""

from typing import Any

import django
from django import template

register = template.Library()


@register.inclusion_tag("djjobs/admin/breadcrumbs.html")
def djjobs_breadcrumbs(*parts: str | None) -> dict[str, Any]:
    """Breadcrumbs in the admin's markup of the running Django (a list from 6.0 on, a div
    before): ``{% djjobs_breadcrumbs "Home" home_url "Jobs" jobs_url "Dashboard" %}``, each label
    followed by its URL, the last one (the current page) without."""
    crumbs = [(parts[i], parts[i + 1] if i + 1 < len(parts) else None) for i in range(0, len(parts), 2)]
    return {"crumbs": crumbs, "as_list": django.VERSION >= (6, 0)}
