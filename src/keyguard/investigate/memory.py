"""What an incident's investigation already announced, and which later runs it queued.

Kept in keyguard's own DynamoDB table (the stack's idempotency table: one item per incident, id
`keyguard-investigation#<incident id>`, expiring with the table's TTL attribute), never in tags or
anything else the key holder writes as easily as IAM. The runs at +15 and +60 minutes, the parts of a
long history and SQS redeliveries announce only findings whose ids are not here yet; a finding is
written down only after its notification went out and its follow-ups did not fail.
"""

from __future__ import annotations

import time
from typing import Any

from keyguard.aws import error_code

PERMISSIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
TTL_SECONDS = 30 * 24 * 3600


class Memory:
    def __init__(self, table: str, ddb: Any, ttl_seconds: int = TTL_SECONDS) -> None:
        self.table, self.ddb, self.ttl = table, ddb, ttl_seconds

    def _key(self, incident_id: str) -> dict[str, Any]:
        return {"id": {"S": f"keyguard-investigation#{incident_id}"}}

    def seen(self, incident_id: str) -> set[str]:
        item = self.ddb.get_item(TableName=self.table, Key=self._key(incident_id), ConsistentRead=True).get("Item")
        return set((item or {}).get("announced", {}).get("SS", []))

    def remember(self, incident_id: str, ids: list[str]) -> None:
        ids = sorted({i for i in ids if i})
        if not ids:
            return
        self.ddb.update_item(
            TableName=self.table,
            Key=self._key(incident_id),
            UpdateExpression="ADD announced :ids SET expiration = :exp",
            ExpressionAttributeValues={":ids": {"SS": ids}, ":exp": {"N": str(int(time.time()) + self.ttl)}},
        )

    def claim(self, incident_id: str, marker: str) -> bool:
        """True exactly once per (incident, marker): e.g. the +15-minute run is queued once, however often
        the message that queues it is delivered."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(incident_id),
                UpdateExpression="ADD markers :m SET expiration = :exp",
                ConditionExpression="attribute_not_exists(markers) OR NOT contains(markers, :one)",
                ExpressionAttributeValues={
                    ":m": {"SS": [marker]},
                    ":one": {"S": marker},
                    ":exp": {"N": str(int(time.time()) + self.ttl)},
                },
            )
        except Exception as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, incident_id: str, marker: str) -> None:
        """Undo a claim whose work failed (the retry claims it again)."""
        self.ddb.update_item(
            TableName=self.table,
            Key=self._key(incident_id),
            UpdateExpression="DELETE markers :m",
            ExpressionAttributeValues={":m": {"SS": [marker]}},
        )
