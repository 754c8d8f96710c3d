"""Lambda handler: CloudTrail records of AWS putting its compromised-key quarantine on an IAM user."""

from keyguard.lambda_entry import make_handler
from keyguard.sources import aws_quarantine

lambda_handler = make_handler(aws_quarantine.extract, "aws-quarantine")
