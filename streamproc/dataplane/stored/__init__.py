"""Stored jobs: one launch of a job over a stored video (or another input), into its stage.

Owns probing, decoding and sampling a stored video, the launch's worker thread, the feed that
hands its frames to an analysis stage as background work (the face stage: the shared
analyzer), the stages' per-frame values and what each becomes (a kind's result builder), and
the runners picked by a kind's input and stage. May import guard/ and the frame plumbing;
never live/ or output/.
"""
