"""Lambda handler: the scheduled key inventory audit (publishes its summary to the topic)."""

from keyguard.operator.scheduled import make_handler

lambda_handler = make_handler()
