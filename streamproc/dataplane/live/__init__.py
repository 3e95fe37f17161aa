"""Live sources: a stream processor's session, from its URL to analysed frames and records.

Owns opening a live input (relays for RTSP/SRT, the guard for what it opens), decoding and
timing its frames, the session a processor runs and the face-search record it writes. May
import guard/ and the frame plumbing (queues, regions, tracking); never stored/ or output/.
"""
