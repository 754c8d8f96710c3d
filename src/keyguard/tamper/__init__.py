"""The tamper watch: CloudTrail calls that undo a containment or blind keyguard (issue 10).

watch.py is the table (and the template's rules), call.py reads the CloudTrail record, decide.py says what
the call means from keyguard's own records (the ledger) and configuration, reapply.py puts a containment
back and reads IAM back, app.py is the runtime the Lambda handler (src/handlers/tamper.py) wraps."""
