"""Notifications: scheduler wiring (APScheduler 3), the outbox and its delivery workers, e-mail and
Slack senders, digests. The outbox table lives in `storage.models.operations`; the rules that decide
who is notified live in `integration`."""
