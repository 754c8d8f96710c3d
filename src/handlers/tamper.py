"""Lambda handler: CloudTrail calls that undo a containment or blind keyguard (the tamper watch)."""

from keyguard.tamper.app import make_handler

lambda_handler = make_handler()
