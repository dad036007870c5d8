"""Schedules: cron math and text (pure), policy (pure), validation, code-declared sync, the tick."""
