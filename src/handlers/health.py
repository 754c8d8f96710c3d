"""Lambda handler: AWS Health RISK events (AWS_RISK_*) naming exposed access keys."""

from keyguard.lambda_entry import make_handler
from keyguard.sources import health

lambda_handler = make_handler(health.extract, "health")
