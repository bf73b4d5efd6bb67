"""Exhibit operations: scenes and crossfades, schedule, votes, status, logging, watchdog."""
