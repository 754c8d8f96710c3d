"""Operator commands: what a security team runs by hand (`keyguard status | contain | release | audit`) and
the scheduled audit. Read-mostly; every change goes through keyguard's own actions and engine."""
