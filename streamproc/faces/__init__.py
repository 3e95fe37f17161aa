"""The face models: SCRFD detection, ArcFace-style embedding, pose and quality, and their runners.

Owns loading a model pack and running it (onnxruntime, or PyTorch for the torch backend),
and the plain data the face pipeline carries between stages. Layer: beside storage (imports
neither); imports only the base modules (config, errors, metrics, ...), nothing above.
"""
