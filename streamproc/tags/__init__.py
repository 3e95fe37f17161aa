"""Resource tags: TagResource, UntagResource and ListTagsForResource, for any tagged resource.

Owns the tag commands, their appliers (the tag limit) and which key an ARN's tags are kept
under; the resources themselves (collections, processors, later kinds) are registered by
the daemon as owners of an ARN resource type. Layer: a domain package beside collections,
processors and jobs (imports none of them); imports storage, rekognition and below.
"""
