"""Collections, faces and users: the rules behind their operations and their ledger appliers.

Owns what IndexFaces, SearchFaces, CreateUser and the rest decide (quality filter, quotas,
idempotency) and the appliers that change collections in ledger order. Layer: a domain
package beside processors, jobs and tags (imports none of them); imports dataplane and
below, never api or anything above it.
"""
