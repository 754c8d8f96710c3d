"""Extractors: one per trigger, each turning its EventBridge event into keyguard Incidents.

They are the only code that knows event shapes. Each raises MalformedEvent for an event that does not
have its trigger's shape, before anything is done.
"""
