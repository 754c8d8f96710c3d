"""Investigation: after containment, what did the leaked key do? CloudTrail history in every enabled
region, a summary, follow-up containment of what it created, and a second notification.

Runs in its own function (fed by an SQS queue the containment function writes to after containment),
so it can never delay or undo containment.
"""
