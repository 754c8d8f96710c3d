"""Lambda handler: GuardDuty findings on an access key."""

from keyguard.lambda_entry import make_handler
from keyguard.sources import guardduty

lambda_handler = make_handler(guardduty.extract, "guardduty")
