"""Reliability checks (issue 5): crash the service while it writes, and count what survived."""
