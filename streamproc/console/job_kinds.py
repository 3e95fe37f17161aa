"""The stored-video job kinds the console shows: each Get operation and its job kind.

The daemon's one list of job kinds is ``daemon.jobs.job_wires``, above the console's layer;
this is the console's copy of its video kinds (media analysis, whose input is images, has
its own list and detail on the Jobs page), and ``tests/test_console_jobs.py`` checks that the
two agree, and that ``static/jobs.js``'s ``KINDS`` and ``DESCRIBE`` tables have exactly the
operations here. A new video job kind adds one line here and an entry in each of those.
"""

from __future__ import annotations

from types import MappingProxyType

from streamproc.jobs.kinds.celebrities import CELEBRITY_RECOGNITION
from streamproc.jobs.kinds.labels import LABEL_DETECTION
from streamproc.jobs.kinds.moderation import CONTENT_MODERATION
from streamproc.jobs.kinds.persons import PERSON_TRACKING
from streamproc.rekognition.constants import FACE_DETECTION, FACE_SEARCH

# Get operation -> job kind (JobKind.api), in the order the page lists them.
VIDEO_JOB_GETS = MappingProxyType({
    "GetFaceSearch": FACE_SEARCH,
    "GetFaceDetection": FACE_DETECTION,
    "GetContentModeration": CONTENT_MODERATION,
    "GetLabelDetection": LABEL_DETECTION,
    "GetCelebrityRecognition": CELEBRITY_RECOGNITION,
    "GetPersonTracking": PERSON_TRACKING,
})
# The media-analysis job operations the Jobs page calls (listed, then one opened).
MEDIA_JOB_OPERATIONS = ("ListMediaAnalysisJobs", "GetMediaAnalysisJob")
