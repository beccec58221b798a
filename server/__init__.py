"""Shipway's server (the master): webhooks, the API, the engine that drives pipelines."""
