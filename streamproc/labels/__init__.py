"""Labels: what a label pack finds in an image (Rekognition's names), and the filters on them.

:mod:`streamproc.labels.types` is the contract between the pack (its models and label map)
and its users: DetectLabels on an image, and the stored-video label job.
"""
