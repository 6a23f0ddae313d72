"""Frontline's Python client, shipped with the service: ``from frontline.client import Client``.

It stands above the wire contract (``contracts/``) and beside the service: it speaks HTTP to a
Frontline server and imports nothing of ``service/`` (tests/unit/test_layers.py holds it).
"""
