"""Builds a running bot from settings: clients, store, Bolt app, digests, the web server.

`build` makes the process's collaborators; `run` runs them as `serve`, the `digest` worker,
`digest --once` and `errors`. Nothing is created at import time.
"""
