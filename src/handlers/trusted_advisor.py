"""Lambda handler: Trusted Advisor "Exposed Access Keys" check items (status ERROR) naming exposed keys."""

from keyguard.lambda_entry import make_handler
from keyguard.sources import trusted_advisor

lambda_handler = make_handler(trusted_advisor.extract, "trusted-advisor")
