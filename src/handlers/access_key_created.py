"""Lambda handler: CloudTrail CreateAccessKey calls (a new long-lived key)."""

from keyguard.lambda_entry import make_handler
from keyguard.sources import cloudtrail

lambda_handler = make_handler(cloudtrail.extract, "access_key_created")
