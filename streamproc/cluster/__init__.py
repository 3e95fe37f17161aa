"""Cluster mode: the shared ledger on a Kafka topic, group membership and processor placement.

Owns how several daemons agree: every node applies the same commands in log order, and the
group decides which node runs which processor or job. Layer: imports api and the layers
under it (the domain packages it places); never daemon, tools or cli.
"""
