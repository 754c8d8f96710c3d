"""Lambda handler: investigate a contained leaked key (SQS messages from the containment functions)."""

from keyguard.lambda_entry import make_investigation_handler

lambda_handler = make_investigation_handler()
