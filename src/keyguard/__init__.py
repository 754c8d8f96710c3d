"""keyguard: contain leaked AWS access keys — quarantine, deactivate, notify."""

__version__ = "0.1.0"
