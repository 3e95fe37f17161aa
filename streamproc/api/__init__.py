"""The AWS JSON 1.1 wire edge: HTTP server, intake, SigV4 and policies, validation, handlers.

Owns everything about the wire: parsing and validating a request against botocore's model,
who may call what, dispatch on ``X-Amz-Target``, and the wire dicts handlers return. The
rules behind each operation live in the domain packages below it. Layer: imports processors,
collections, jobs, tags and the layers under them; never cluster, daemon, tools or cli.
"""
