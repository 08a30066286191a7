"""Helpers for pocketgate's end-to-end tests: processes, networking, configs."""
