"""The wire halves of the job kinds: Start parameters in, Get responses out (one module each).

Layer: part of api; imports jobs (``streamproc.jobs.kinds``) and below, never cluster or above.
"""
