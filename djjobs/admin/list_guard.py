"""Lists that answer a hostile query string or action POST with a message, never a 500.

Django's admin lets a query string filter a list by any lookup on the model's own fields
(``?errors__contains=x``, ``?worker_id__regex=[``); such a lookup can fail only when the query
runs, as the page renders (SQLite has no JSON ``contains``; PostgreSQL refuses an invalid
regex, or a NUL character in any parameter): a 500. And an action POST whose
``_selected_action`` is not a primary key raises ValidationError: a 500 too.

``ListGuard`` (a ModelAdmin mixin, on every djjobs admin) allows only the lookups the page
itself offers: its list filters, the equality filters the admin's own links use
(``link_lookups``) and the search box. Anything else, or a NUL character anywhere in the query
string, is refused the way Django refuses lookup values it cannot use (IncorrectLookupParameters):
a redirect to the unfiltered list (``?e=1``), here with a message saying what was refused. A
selection that is not ids is refused with a message, nothing done.
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import SimpleListFilter, helpers
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

# A mixin of ModelAdmin: the type checker sees the ModelAdmin it extends.
if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList

    _Base = admin.ModelAdmin[Any]
else:
    _Base = object

# The parameters Django's own field filters (FieldListFilter subclasses) use: a field in
# list_filter may be queried by these, as its filter's links do.
FILTER_LOOKUPS = (
    "",
    "__exact",
    "__isnull",
    "__isempty",
    "__gte",
    "__gt",
    "__lte",
    "__lt",
    "__in",
    "__id__exact",
    "__pk__exact",
)


class ListGuard(_Base):
    """A ModelAdmin mixin: only the lookups the list offers; hostile query strings and
    selections get a message instead of a server error."""

    # Equality filters the admin's own links use, e.g. ("schedule",) for ?schedule=<id>.
    link_lookups: tuple[str, ...] = ()

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        return lookup in self._allowed_lookups(request)

    def _allowed_lookups(self, request: HttpRequest) -> set[str]:
        allowed = {f"{name}{suffix}" for name in self.link_lookups for suffix in ("", "__exact")}
        for item in self.get_list_filter(request):
            if isinstance(item, type) and issubclass(item, SimpleListFilter):
                if item.parameter_name:  # Django refuses a filter without one
                    allowed.add(item.parameter_name)
                continue
            path = item[0] if isinstance(item, (list, tuple)) else item
            if isinstance(path, str):
                allowed.update(f"{path}{suffix}" for suffix in FILTER_LOOKUPS)
        if self.date_hierarchy:
            allowed.update(f"{self.date_hierarchy}__{part}" for part in ("year", "month", "day"))
        return allowed

    def get_changelist_instance(self, request: HttpRequest) -> "ChangeList":
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()):
            self.message_user(
                request,
                "The query string holds a NUL character, which no filter or search can use: showing the whole list.",
                messages.ERROR,
            )
            raise IncorrectLookupParameters("NUL in the query string")
        try:
            return super().get_changelist_instance(request)
        except DisallowedModelAdminLookup as exc:
            self.message_user(
                request,
                f"{exc}: filter with the list's filters or its search box. Showing the whole list.",
                messages.ERROR,
            )
            raise IncorrectLookupParameters(exc) from exc

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:  # Django 6 adds action_location
        pk = self.opts.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                if "\x00" in value:
                    raise ValidationError("NUL")
                pk.to_python(value)
            except ValidationError:
                self.message_user(
                    request,
                    f"{value[:100]!r} is not the id of a {self.opts.verbose_name}: "
                    "select rows of the list; nothing was done.",
                    messages.ERROR,
                )
                return None
        return super().response_action(request, queryset, *args, **kwargs)
