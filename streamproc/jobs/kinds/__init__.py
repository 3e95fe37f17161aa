"""The job kinds, one module each (their wire halves live in ``streamproc.api.job_kinds``).

Layer: part of jobs; imports dataplane and below, never api or anything above it.
"""
