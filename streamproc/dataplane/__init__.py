"""The data plane: reading video, batched face analysis, tracking and publishing records.

Owns the threads that do the work of a running processor or a stored-video job launch:
opening sources (and judging every URL FFmpeg opens), analysis stages with bounded queues,
and the outbox and senders that deliver records in order. Layer: imports search and the
layers under it; never the domain packages (processors, collections, jobs, tags) or anything
above.
"""
