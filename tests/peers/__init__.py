"""Real peers the tests talk to over loopback (model endpoints speaking a vendor's wire)."""
