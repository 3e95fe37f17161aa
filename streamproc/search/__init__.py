"""Face search: the one path that matches a face against a collection, for the API and processors.

Owns the search rule (the collection's model checked, thresholds, matches ranked) so that no
caller reaches the index directly. Layer: imports rekognition and below; never dataplane
or anything above.
"""
