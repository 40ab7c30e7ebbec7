"""Fingerprint extraction and planning (configuration as data in plans.json)."""
