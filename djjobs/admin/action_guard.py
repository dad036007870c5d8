"""Actions a user may not run answer 403.

Django leaves the actions a user lacks the permission for out of the list's menu, and answers
a POST of one with the list again (200) and a "No action selected" message. The djjobs admins
answer 403 instead: a view-only user (or a script) learns that it is forbidden.
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

# A mixin of ModelAdmin: the type checker sees the ModelAdmin it extends.
if TYPE_CHECKING:
    _Base = admin.ModelAdmin[Any]
else:
    _Base = object


def forbidden_action(modeladmin: "admin.ModelAdmin[Any]", request: HttpRequest) -> bool:
    """Whether ``request`` posts an action of this admin (or of the site) that this user may not run."""
    name = request.POST.get("action") if request.method == "POST" else None
    if not name:
        return False
    declared = {getattr(action, "__name__", action) for action in modeladmin.actions or ()}
    declared.update(site_name for site_name, _func in modeladmin.admin_site.actions)
    return name in declared and name not in modeladmin.get_actions(request)


class ActionGuard(_Base):
    """A ModelAdmin mixin: a POST of a forbidden action is a 403."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if forbidden_action(self, request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)
