"""Rekognition's vocabulary: constants and name formats, wire shapes, pagination tokens.

Owns how domain objects become Rekognition's wire dicts, for every path that writes them
(API responses and output records alike). Layer: imports faces, storage and the base
modules only; never search, dataplane or anything above.
"""
