"""Generated reference pages: configuration keys, CLI help, the operations table.

Each module returns Markdown that the docs build's hook (``docs/hooks.py``) puts in place of
a ``<!-- gen:NAME -->`` comment, so the pages are made from the code they describe.
"""
