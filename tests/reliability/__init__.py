"""Reliability and security tests (issue 6): faults, bad input, hardening, secrets, load."""
