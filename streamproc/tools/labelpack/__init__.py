"""``streamproc models convert labels``: the label pack, made from a registry package.

:mod:`.sources` pins what is converted, :mod:`.venv` makes the converter venv (TensorFlow and
tf2onnx, never in streamproc's own), :mod:`.worker` runs there, :mod:`.verify` checks the
converted models against the originals' answers, :mod:`.build` writes the pack atomically.
"""
