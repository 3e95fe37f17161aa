"""Domain errors that carry their AWS wire identity.

Every error the control plane can return is a subclass of :class:`StreamprocError` named
after the Rekognition error shape it serialises as. The transport has exactly one
serialiser (``api.transport.error_response``); services only raise these.
"""

from __future__ import annotations


class StreamprocError(Exception):
    """Base for errors that reach API clients.

    Attributes:
        code: the AWS error code (the ``__type`` on the wire).
        status_code: HTTP status.
        sender_fault: True when the caller can fix the request.
        retriable: True when botocore (standard mode) retries this code.

    """

    code = "InternalServerError"
    status_code = 500
    sender_fault = False
    retriable = True
    default_message = "Internal server error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class _ClientError(StreamprocError):
    status_code = 400
    sender_fault = True
    retriable = False


class InternalServerError(StreamprocError):
    """An unexpected server-side failure; details go to the log, never the client."""


class AccessDeniedException(_ClientError):
    """The caller is not allowed to do this."""

    code = "AccessDeniedException"
    default_message = "You are not authorized to perform the action."


class InvalidParameterException(_ClientError):
    """A parameter is missing, malformed or out of range."""

    code = "InvalidParameterException"
    default_message = "Request has invalid parameters"


class InvalidPaginationTokenException(_ClientError):
    """NextToken is not one this server issued."""

    code = "InvalidPaginationTokenException"
    default_message = "Invalid Pagination Token"


class InvalidImageFormatException(_ClientError):
    """The image bytes are not a decodable JPEG or PNG."""

    code = "InvalidImageFormatException"
    default_message = "Request has invalid image format"


class ImageTooLargeException(_ClientError):
    """The image is over the byte or pixel limit."""

    code = "ImageTooLargeException"
    default_message = "Image size is too large."


class InvalidS3ObjectException(_ClientError):
    """The S3 object cannot be read."""

    code = "InvalidS3ObjectException"
    default_message = (
        "Unable to get object metadata from S3. Check object key, region and/or access permissions."
    )


class VideoTooLargeException(_ClientError):
    """The stored video is over the configured size or duration limit."""

    code = "VideoTooLargeException"
    default_message = "The file size or duration of the supplied media is too large."


class OutputNotWritable(Exception):
    """Results cannot be written where a job was told to write them.

    Not a wire error by itself (no ``code``, never serialised): the object store raises it
    for a missing, refused or unwritable output bucket or key, and the jobs report it as
    ``FailureDetails`` ``INVALID_OUTPUT_CONFIG``. ``message`` is safe to show the caller
    (it names buckets, keys and settings, never credentials).
    """

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class IdempotentParameterMismatchException(_ClientError):
    """A ClientRequestToken was reused with different parameters."""

    code = "IdempotentParameterMismatchException"
    default_message = (
        "A ClientRequestToken input parameter was reused with an operation, but at least "
        "one of the other input parameters is different from the previous call to the "
        "operation.")


class ResourceNotFoundException(_ClientError):
    """The named collection, face or processor does not exist."""

    code = "ResourceNotFoundException"
    default_message = "The resource specified in the request cannot be found."


class ResourceNotReadyException(_ClientError):
    """The resource is not ready for the operation (a dataset being created, a version training)."""

    code = "ResourceNotReadyException"
    default_message = "The requested resource isn't ready."


class InvalidPolicyRevisionIdException(_ClientError):
    """A project policy's PolicyRevisionId is not the current one."""

    code = "InvalidPolicyRevisionIdException"
    default_message = "The supplied revision id for the project policy is invalid."


class MalformedPolicyDocumentException(_ClientError):
    """A project policy document that is not a JSON policy."""

    code = "MalformedPolicyDocumentException"
    default_message = "The format of the project policy document is invalid."


class ResourceAlreadyExistsException(_ClientError):
    """A resource with this name already exists."""

    code = "ResourceAlreadyExistsException"
    default_message = "The resource already exists."


class ResourceInUseException(_ClientError):
    """The resource is in a state that does not allow the operation."""

    code = "ResourceInUseException"
    default_message = "Specified resource is in use."


class ConflictException(_ClientError):
    """A user with this id already exists, or a change to a user raced another one."""

    code = "ConflictException"
    default_message = ("A User with the same Id already exists within the collection, or the "
                       "update or deletion of the User caused an inconsistent state.")


class LimitExceededException(_ClientError):
    """A configured limit was reached (botocore retries this code)."""

    code = "LimitExceededException"
    retriable = True
    default_message = "Limit exceeded."


class ServiceQuotaExceededException(_ClientError):
    """A configured quota (e.g. faces per collection) was reached."""

    code = "ServiceQuotaExceededException"
    default_message = "Service quota exceeded."


class ThrottlingException(StreamprocError):
    """Too many requests at once."""

    code = "ThrottlingException"
    default_message = "Slow down."


class UnknownOperationException(_ClientError):
    """X-Amz-Target names no operation this server implements.

    Not modelled by botocore, so clients see a generic ``ClientError`` with this code,
    which is what real AWS JSON services send.
    """

    code = "UnknownOperationException"
    default_message = "The requested operation is not supported"


class SerializationException(_ClientError):
    """The request body is not a JSON object."""

    code = "SerializationException"
    default_message = "Request body is not valid JSON"


class RequestTimeoutException(_ClientError):
    """The request body did not arrive within ``server.body_timeout_s``.

    Not modelled by botocore's Rekognition model; botocore (standard and legacy modes)
    retries this code as a transient error.
    """

    code = "RequestTimeoutException"
    status_code = 408
    retriable = True
    default_message = "The request body did not arrive in time"
