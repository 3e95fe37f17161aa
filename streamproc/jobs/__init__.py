"""Stored-video jobs (StartFaceDetection, StartFaceSearch): rules, appliers, scheduler.

Owns what a Start decides (checks, idempotency, limits), the job rules applied in ledger
order, the scheduler loop that launches and ends jobs on a node, and completion notices.
What a launch reads, which analysis stage takes its frames, what Start checks beyond the
common checks, what each frame becomes and how results are sorted and paged is its kind's
(``kind.py``; the face jobs in ``kinds/faces.py``): nothing else here names a kind. What
every kind shares is fixed here: its request names one S3 object (stored, and named in the
notice, as ``Video``), checked at Start against ``jobs.max_video_bytes``.
Layer: a domain package beside processors, collections and tags (imports none of them);
imports dataplane and below, never api or anything above it.
"""
