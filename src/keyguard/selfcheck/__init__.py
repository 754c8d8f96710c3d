"""The dead-man's switch (issue 10): a scheduled self-check, its heartbeat metric and an alarm that treats
a missing heartbeat as breaching (see check.py and template.yaml's HeartbeatAlarm)."""
