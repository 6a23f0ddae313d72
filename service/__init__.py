"""Frontline: an event-sourced conflict database service."""
