"""The permissions each function needs, derived from what its actions declare.

tests/unit/test_template.py checks that template.yaml grants exactly these.
"""

from __future__ import annotations

from keyguard.app import DEDUP_PERMISSIONS
from keyguard.incident import Source
from keyguard.investigate.core import FOLLOW_UP_ACTIONS, FOLLOW_UP_READS, OPT_IN_ACTIONS
from keyguard.investigate.ec2 import DESCRIBE_PERMISSIONS
from keyguard.investigate.handoff import HANDOFF_PERMISSIONS
from keyguard.investigate.trail import LOOKUP_PERMISSIONS
from keyguard.notify import NOTIFY_PERMISSIONS
from keyguard.operator.audit import AUDIT_PERMISSIONS
from keyguard.org.credentials import ASSUME_PERMISSIONS
from keyguard.org.directory import DIRECTORY_PERMISSIONS
from keyguard.plan import possible_actions
from keyguard.respond import EXEMPTION_PERMISSIONS, LOOKUP_OWNER_PERMISSIONS, RecordInLedger
from keyguard.sources import federation

# template.yaml logical ids of the functions, per trigger
FUNCTIONS = {
    "GuardDutyFunction": Source.GUARDDUTY,
    "HealthFunction": Source.HEALTH,
    "AccessKeyCreatedFunction": Source.CREATE_ACCESS_KEY,
    "InvestigationFunction": Source.INVESTIGATION,
    "AwsQuarantineFunction": Source.AWS_QUARANTINE,
    "TrustedAdvisorFunction": Source.TRUSTED_ADVISOR,
}

# Functions no trigger drives (template.yaml logical id -> the reads they need, all on "*").
SCHEDULED_FUNCTIONS = {"AuditFunction": frozenset(AUDIT_PERMISSIONS)}

# Reads that IAM cannot scope to a resource (the template grants them on "*"; nothing else is).
UNSCOPABLE_READS = frozenset(LOOKUP_PERMISSIONS) | frozenset(DESCRIBE_PERMISSIONS)

# The investigation function consumes its queue (Lambda's SQS poller uses the function's role).
CONSUME_PERMISSIONS = frozenset(
    {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
)

# What Lambda itself does with the function's role: write logs, send failed events to the dead-letter
# queue, and use the stack's KMS key for the encrypted topic and queues.
PLATFORM_PERMISSIONS = frozenset(
    {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"}
)


# The containment functions write keyguard's ledger (its table; keyguard.ledger) after the deny.
LEDGER_SOURCES = frozenset(
    {Source.GUARDDUTY, Source.HEALTH, Source.CREATE_ACCESS_KEY, Source.AWS_QUARANTINE, Source.TRUSTED_ADVISOR}
)


def iam_permissions(source: Source) -> frozenset[str]:
    actions = list(possible_actions(source))
    if source is Source.INVESTIGATION:
        actions += FOLLOW_UP_ACTIONS
    perms = {p for action in actions for p in action.permissions if p.startswith("iam:")}
    perms.update(LOOKUP_OWNER_PERMISSIONS)
    if source is Source.INVESTIGATION:
        perms.update(FOLLOW_UP_READS)
    if source is Source.CREATE_ACCESS_KEY:
        perms.update(EXEMPTION_PERMISSIONS)
    if source is Source.GUARDDUTY:  # a federated session's issuing user, confirmed by IAM
        perms.update(federation.VERIFY_PERMISSIONS)
    return frozenset(perms)


def opt_in(parameter: str) -> frozenset[str]:
    """Permissions granted only when the template parameter is 'true'."""
    return frozenset(OPT_IN_ACTIONS[parameter].permissions)


def required(source: Source) -> frozenset[str]:
    """Every permission the function's role needs (IAM work, notification, de-duplication, hand-off)."""
    perms = iam_permissions(source) | frozenset(NOTIFY_PERMISSIONS) | frozenset(DEDUP_PERMISSIONS)
    if source in LEDGER_SOURCES:
        perms |= frozenset(RecordInLedger.permissions)
    if source is Source.INVESTIGATION:  # it also queues its own continuations and later runs
        return perms | UNSCOPABLE_READS | CONSUME_PERMISSIONS | frozenset(HANDOFF_PERMISSIONS)
    if source is Source.GUARDDUTY:  # a federated session's issuer, from CloudTrail
        perms |= frozenset(federation.LOOKUP_PERMISSIONS)
    return perms | frozenset(HANDOFF_PERMISSIONS)


# ---- issue 10: the tamper watch and the self-check (functions that answer no incident trigger)
def _watch_functions() -> dict[str, frozenset[str]]:
    from keyguard.selfcheck import app as selfcheck_app
    from keyguard.selfcheck import check as selfcheck
    from keyguard.tamper import app as tamper_app
    from keyguard.tamper import reapply

    tamper = reapply.permissions() | frozenset(tamper_app.NOTIFY_PERMISSIONS) | frozenset(DEDUP_PERMISSIONS)
    tamper |= frozenset(tamper_app.LEDGER_PERMISSIONS)
    check = (
        frozenset(selfcheck.READ_PERMISSIONS)
        | frozenset(selfcheck.UNSCOPED_PERMISSIONS)
        | frozenset(selfcheck_app.NOTIFY_PERMISSIONS)
        | frozenset(DEDUP_PERMISSIONS)
    )
    return {"TamperWatchFunction": tamper, "SelfCheckFunction": check}


def _unscoped_selfcheck() -> tuple[str, ...]:
    from keyguard.selfcheck.check import UNSCOPED_PERMISSIONS

    return UNSCOPED_PERMISSIONS


# template.yaml logical id -> every permission its role needs (besides PLATFORM_PERMISSIONS)
WATCH_FUNCTIONS = _watch_functions()
# what each of them may hold on Resource "*" (IAM cannot scope these; none is an IAM write)
WATCH_UNSCOPED = {"SelfCheckFunction": frozenset(_unscoped_selfcheck())}

# ---------------------------------------------------------------- issue 11: organization mode
# The central functions' roles may only assume member roles and ask Organizations about an account
# (template.yaml OrganizationAccessPolicy); what they do in a member account is the member role's.
ORGANIZATION_PERMISSIONS = frozenset(ASSUME_PERMISSIONS) | frozenset(DIRECTORY_PERMISSIONS)

# The functions the central bus routes in organization mode. Not yet routed there: AWS's own quarantine and
# Trusted Advisor (issue 12) and the tamper watch (issue 10), whose events members forward but no central
# rule sends on (README "Deploying to an organization": not covered yet).
CENTRAL_SOURCES = frozenset({Source.GUARDDUTY, Source.HEALTH, Source.CREATE_ACCESS_KEY, Source.INVESTIGATION})
CENTRAL_FUNCTIONS = {f: s for f, s in FUNCTIONS.items() if s in CENTRAL_SOURCES}

# Reads the member role grants on "*" (none of them supports resource-level permissions): investigation
# and the inventory audit run in the member account through the same role.
MEMBER_READS = UNSCOPABLE_READS | frozenset(AUDIT_PERMISSIONS)


def member_role() -> frozenset[str]:
    """Every permission the member role (templates/member-global.yaml) grants without an opt-in: the IAM
    work of every trigger and of investigation, and the reads above."""
    iam = frozenset().union(*(iam_permissions(source) for source in FUNCTIONS.values()))
    return iam | MEMBER_READS


def operator_role() -> frozenset[str]:
    """What the optional operator role (templates/member-global.yaml, keyguard-operator) grants: status's
    reads, contain (the engine's manual source), release, and the audit's reads."""
    from keyguard.operator.organization import RELEASE_PERMISSIONS
    from keyguard.operator.principal import READ_ROLE_PERMISSIONS, READ_USER_PERMISSIONS

    reads = frozenset(READ_USER_PERMISSIONS) | frozenset(READ_ROLE_PERMISSIONS) | frozenset(AUDIT_PERMISSIONS)
    return reads | iam_permissions(Source.MANUAL) | frozenset(RELEASE_PERMISSIONS)
