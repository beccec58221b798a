"""The ``shipway`` command line: run the server and runners, and drive the API."""
