"""Reliability checks: crash the service while it writes, and count what survived."""
