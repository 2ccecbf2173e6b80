"""Formatters for findings: a rich table for people, JSON for tools, SARIF for code scanning."""
