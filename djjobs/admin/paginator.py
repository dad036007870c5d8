"""The job list's paginator: it never counts the whole table.

Unfiltered on PostgreSQL, the count is the table estimate; otherwise a bounded count, and
past its limit the planner's estimate (PostgreSQL) or "at least the limit". When the count
is not exact, pages stop at ``counting.COUNT_LIMIT`` rows: deeper pages would be OFFSET scans that
grow with the table, and filters find old jobs faster.
"""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from . import counting
from .counting import ESTIMATE, Tally, bounded, plan_rows, settle, table_estimate


class EstimatedPaginator(Paginator):
    @cached_property
    def tally(self) -> Tally:
        queryset = self.object_list
        if not queryset.query.where:  # the whole table
            estimate = table_estimate(queryset.model)
            if estimate is not None and estimate > counting.limit():
                return Tally(estimate, ESTIMATE)
        counted = bounded(queryset)
        return settle(counted, plan_rows(queryset) if counted > counting.limit() else None)

    @cached_property
    def count(self) -> int:
        return self.tally.value

    @cached_property
    def num_pages(self) -> int:
        pages = super().num_pages
        return pages if self.tally.exact else min(pages, max(1, counting.limit() // self.per_page))

    @property
    def truncated(self) -> bool:
        """Whether some rows lie beyond the last page offered."""
        return not self.tally.exact and self.num_pages * self.per_page < self.count
