"""The permissions each function needs, derived from what its actions declare.

tests/unit/test_template_permissions.py checks that template.yaml grants exactly these.
"""

from __future__ import annotations

from keyguard.app import DEDUP_PERMISSIONS
from keyguard.incident import Source
from keyguard.notify import NOTIFY_PERMISSIONS
from keyguard.plan import possible_actions
from keyguard.respond import EXEMPTION_PERMISSIONS, LOOKUP_OWNER_PERMISSIONS

# template.yaml logical ids of the functions, per trigger
FUNCTIONS = {
    "GuardDutyFunction": Source.GUARDDUTY,
    "HealthFunction": Source.HEALTH,
    "AccessKeyCreatedFunction": Source.CREATE_ACCESS_KEY,
}


def iam_permissions(source: Source) -> frozenset[str]:
    perms = {p for action in possible_actions(source) for p in action.permissions}
    perms.update(LOOKUP_OWNER_PERMISSIONS)
    if source is Source.CREATE_ACCESS_KEY:
        perms.update(EXEMPTION_PERMISSIONS)
    return frozenset(perms)


def required(source: Source) -> frozenset[str]:
    """Every permission the function's role needs (IAM work, notification, de-duplication)."""
    return iam_permissions(source) | frozenset(NOTIFY_PERMISSIONS) | frozenset(DEDUP_PERMISSIONS)


# What Lambda itself does with the function's role: write logs, send failed events to the dead-letter
# queue, and use the stack's KMS key for the encrypted topic and queue.
PLATFORM_PERMISSIONS = frozenset(
    {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"}
)
