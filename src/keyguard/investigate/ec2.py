"""Opt-in follow-ups on EC2: stop (never terminate) what the key launched; require IMDSv2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from keyguard.actions import Action, ActionResult, Status, tag_value

DESCRIBE_PERMISSIONS = ("ec2:DescribeInstances",)


@dataclass(frozen=True)
class StopInstance(Action):
    """Stop an instance the leaked key launched and tag it with the incident. Never terminates."""

    instance_id: str
    region: str
    incident_id: str
    name: ClassVar[str] = "stop-instance"
    permissions: ClassVar[tuple[str, ...]] = ("ec2:StopInstances", "ec2:CreateTags")
    service: ClassVar[str] = "ec2"

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"{self.instance_id} in {self.region}"

    def _call(self, ec2: Any) -> None:
        ec2.stop_instances(InstanceIds=[self.instance_id])
        ec2.create_tags(
            Resources=[self.instance_id], Tags=[{"Key": "keyguard:incident", "Value": tag_value(self.incident_id)}]
        )

    def _on_error(self, code: str, message: str) -> ActionResult:
        if code == "InvalidInstanceID.NotFound":
            return ActionResult(self.name, self.target, Status.SKIPPED, "instance not found: already terminated?", code)
        if code == "IncorrectInstanceState":
            return ActionResult(self.name, self.target, Status.ALREADY_DONE, "not running", code)
        return super()._on_error(code, message)


@dataclass(frozen=True)
class RequireImdsV2(Action):
    """HttpTokens=required: IMDSv1 is how instance-role credentials get stolen through SSRF."""

    instance_id: str
    region: str
    name: ClassVar[str] = "require-imdsv2"
    permissions: ClassVar[tuple[str, ...]] = ("ec2:ModifyInstanceMetadataOptions",)
    service: ClassVar[str] = "ec2"

    @property
    def target(self) -> str:  # type: ignore[override]
        return f"{self.instance_id} in {self.region}"

    def _call(self, ec2: Any) -> None:
        ec2.modify_instance_metadata_options(InstanceId=self.instance_id, HttpTokens="required", HttpEndpoint="enabled")


def metadata_tokens(ec2: Any, instance_id: str) -> str | None:
    """The instance's HttpTokens setting ('optional' allows IMDSv1), or None if it is not found."""
    try:
        found = ec2.describe_instances(InstanceIds=[instance_id])
    except Exception as e:
        if "InvalidInstanceID" in str(e):
            return None
        raise
    for reservation in found.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            return (instance.get("MetadataOptions") or {}).get("HttpTokens")
    return None
