"""Lambda handler: the scheduled self-check (the dead-man's switch's heartbeat)."""

from keyguard.selfcheck.app import make_handler

lambda_handler = make_handler()
