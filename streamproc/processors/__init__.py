"""Stream processors: definitions, the state machine, ledger appliers and the reconciler.

Owns what a processor is and may become (kinds, specs, states as data), the rules applied in
ledger order, the registry of desired and actual state, and the one loop that makes running
processors match it. Layer: a domain package beside collections, jobs and tags (imports
none of them); imports dataplane and below, never api or anything above it.
"""
