"""Output: records on their way to Kafka, never lost.

Owns the outbox and its spool, one sender per destination, topics parked while they cannot
take records, the transports (Kafka) and the outputs allowlist. Imports none of live/,
stored/ or guard/: a record is bytes with a destination and a topic by the time it is here.
"""
