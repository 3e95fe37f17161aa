"""Celebrity recognition from the operator's gallery: its catalog, matching and image search.

No registry package ships a gallery of celebrities, so the celebrities are the users of one
collection the operator names in config (``celebrities.gallery``), described by a catalog
file the operator writes (``celebrities.catalog``). Layer: beside the data plane, over the
one search path (:mod:`streamproc.search`).
"""
