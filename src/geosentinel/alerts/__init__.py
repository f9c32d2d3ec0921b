"""Alerts: events that a person must take (lifecycle and escalation build on :mod:`.engine`)."""
