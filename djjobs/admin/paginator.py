"""The job list's paginator: it never counts the whole table.

Unfiltered on PostgreSQL, the count is the table estimate. Otherwise it is a bounded count, up
to ``COUNT_LIMIT`` rows (what a filter combining two columns reads from the heap stays
small), and past it the planner's estimate (PostgreSQL, shown "~") or "at least" (SQLite,
"1,000+"). Pages stop at ``MAX_ROWS`` rows when the count is not exact: deeper pages are
OFFSET scans that grow with the table, and the filters reach old jobs faster.
"""

from typing import Any, cast

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

from .counting import AT_LEAST, ESTIMATE, Tally, bounded, plan_rows, settle, table_estimate

COUNT_LIMIT = 1_000
MAX_ROWS = 10_000


class EstimatedPaginator(Paginator):
    @cached_property
    def tally(self) -> Tally:
        queryset = cast("QuerySet[Any]", self.object_list)  # the admin paginates querysets
        if not queryset.query.where:  # the whole table
            estimate = table_estimate(queryset.model)
            if estimate is not None and estimate > COUNT_LIMIT:
                return Tally(estimate, ESTIMATE)
        counted = bounded(queryset, COUNT_LIMIT)
        return settle(counted, plan_rows(queryset) if counted > COUNT_LIMIT else None, COUNT_LIMIT)

    @cached_property
    def count(self) -> int:
        return self.tally.value

    @cached_property
    def num_pages(self) -> int:
        pages = super().num_pages
        return pages if self.tally.exact else min(pages, max(1, MAX_ROWS // self.per_page))

    @property
    def truncated(self) -> bool:
        """Whether some rows lie beyond the last page offered."""
        if self.tally.kind == AT_LEAST:
            return True
        return not self.tally.exact and self.num_pages * self.per_page < self.count
