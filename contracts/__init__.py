"""Wire contracts of Frontline: what clients send and what they get back.

This package imports nothing from ``service``; the JSON Schema it generates is pinned by a
snapshot test (``tests/unit/test_contract_snapshot.py``).
"""
