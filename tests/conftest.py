"""Shared test fixtures. Database fixtures run each test on SQLite and on PostgreSQL."""
