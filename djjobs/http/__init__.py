"""The HTTP endpoints: views, urls, health, metrics, a job's status."""
