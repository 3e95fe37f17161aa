"""What FFmpeg may open: the input allowlist and the guard on every nested open.

Owns the judgement of URLs and files (schemes, hosts, media roots, listen options), the
guarded opener PyAV's ``io_open`` calls for every URL an input opens after the first (HLS
segments, keys, redirects) and the HTTP fetch it uses. Live sources and stored videos both
open through it. Imports only the dataplane's frame plumbing and the layers below the data
plane; never live/, stored/ or output/.
"""
