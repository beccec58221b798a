"""Shipway's pure core: the domain model, the status machine and the pipeline file.

Nothing in this package does I/O. It imports no redis, rq, docker, etcd, starlette,
jinja2, sqlalchemy or subprocess; the server and the runners adapt it to the world
through the Protocols in ``pipelines.ports``.
"""
