"""Every failure of ``models convert`` that the CLI reports in one line (exit 1)."""

from __future__ import annotations

from streamproc.labels.labelmap import LabelMapError
from streamproc.labels.pack import PackError
from streamproc.tools.labelpack.sources import SourceError
from streamproc.tools.labelpack.venv import ConverterError
from streamproc.tools.labelpack.verify import VerifyError

CONVERT_ERRORS = (ConverterError, SourceError, VerifyError, PackError, LabelMapError, OSError)
