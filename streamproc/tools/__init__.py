"""The operator commands (demo, enrol, models, tail) and the harness for tests, demo and benchmarks.

Owns what the command line runs besides ``serve``: model packs (download, install, list),
enrolment, the demo, and the real servers the demo, the tests and the benchmarks start. Those
harness modules (broker, camera, clusterkit, gst_rtsp, livestream, mediaservers,
sharedservers) say so in their first line; the daemon itself never imports them. Layer:
imports daemon and everything below; only cli imports it.
"""
