"""Shipway's runners: RQ workers that execute jobs in containers on any host."""
