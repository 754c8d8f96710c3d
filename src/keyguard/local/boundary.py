"""Users' permissions boundaries in moto, which (5.2) has none: PutUserPermissionsBoundary and
DeleteUserPermissionsBoundary raise NotImplementedError there, and GetUser never shows a boundary.

keyguard's quarantine puts a deny-all permissions boundary on a user, so the emulator must answer those
calls as IAM does. This adds them to moto's IAM response class and user model, for every client in this
process (in-process `mock_aws` and `ThreadedMotoServer` alike): keyguard's own clients, the operator's and
an attacker's in a test. A moto_server in another process does not have them; keyguard then reports the
boundary layer as failed, as it would against an IAM that refused the call.

What IAM checks and this checks too: the user exists (NoSuchEntity), the ARN is a policy ARN
(InvalidInput), and the policy exists (NoSuchEntity) unless it is an AWS managed one. Like moto, it does
not *evaluate* boundaries: tests that claim a request is denied use tests/iam_eval.py.
"""

from __future__ import annotations

import re
from typing import Any

_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/[\w+=,.@/-]{1,512}")
_installed = False


def install() -> None:
    """Idempotent: patch moto once per process."""
    global _installed
    if _installed:
        return
    from moto.core.responses import EmptyResult
    from moto.core.serialize import return_if_not_empty
    from moto.iam import models, responses
    from moto.iam.exceptions import NotFoundException, ValidationError

    def boundary_of(user: Any) -> dict[str, str] | None:
        arn = getattr(user, "permissions_boundary_arn", None)
        return {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn} if arn else None

    models.User.permissions_boundary = property(boundary_of)  # type: ignore[attr-defined]

    def check(backend: Any, arn: str) -> None:
        if not isinstance(arn, str) or not _POLICY_ARN.fullmatch(arn):
            raise ValidationError(f"Value ({arn}) for parameter PermissionsBoundary is invalid.")
        if ":iam::aws:policy/" in arn:
            return  # AWS managed (moto loads them only with MOTO_IAM_LOAD_MANAGED_POLICIES=true)
        if arn not in backend.managed_policies:
            raise NotFoundException(f"Policy {arn} does not exist or is not attachable.")

    def put_user_permissions_boundary(self: Any) -> Any:
        name, arn = self._get_param("UserName"), self._get_param("PermissionsBoundary")
        user = self.backend.get_user(name)  # NoSuchEntity
        check(self.backend, arn)
        user.permissions_boundary_arn = arn
        return EmptyResult()

    def delete_user_permissions_boundary(self: Any) -> Any:
        user = self.backend.get_user(self._get_param("UserName"))
        user.permissions_boundary_arn = None
        return EmptyResult()

    responses.IamResponse.put_user_permissions_boundary = put_user_permissions_boundary  # type: ignore[attr-defined]
    responses.IamResponse.delete_user_permissions_boundary = delete_user_permissions_boundary  # type: ignore[attr-defined]
    responses.IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER["GetUserResponse.User.PermissionsBoundary"] = (
        return_if_not_empty
    )
    _installed = True
