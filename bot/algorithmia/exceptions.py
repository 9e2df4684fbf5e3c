"""The exceptions the Algorithmia client raises: one tree, one class per thing a caller can act on.

AlgorithmiaError
├── Unauthorized       401, or code 2002: the key or JWT is missing, wrong or expired
├── Forbidden          403, or code 2001: the credentials may not read this algorithm's errors
├── NotFound           404: no such algorithm (or owner)
├── FeatureDisabled    code 5005, or a message saying the algorithm-errors feature is off
├── Unavailable        5xx after retries, a timeout or a connection failure
├── BadResponse        a 2xx that is not what the API documents (not JSON, wrong shape, `error`)
└── RequestRejected    any other 4xx (400, 429, …)
"""

from __future__ import annotations


class AlgorithmiaError(Exception):
    """A call to the Algorithmia API failed; `str(error)` is a one-line message for people.

    `message` is the server's own message when it sent one, else a description of what went
    wrong. It never contains the API key or JWT.
    """

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        self.message = " ".join(message.split())
        self.status = status
        """The HTTP status, or `None` when no response arrived."""
        self.code = code
        """The API's error code (e.g. 2001 NotAuthorized) when the body carried one."""
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Unauthorized(AlgorithmiaError):
    """The cluster did not accept the API key or JWT (401, or code 2002 NotAuthenticated)."""


class Forbidden(AlgorithmiaError):
    """The credentials are valid but may not do this (403, or code 2001 NotAuthorized).

    Reading errors needs a standard key with Management Access, of the owner or an owning-org
    member; admin keys are refused on these endpoints.
    """


class NotFound(AlgorithmiaError):
    """The cluster knows no such algorithm (404)."""


class FeatureDisabled(AlgorithmiaError):
    """The cluster's algorithm-errors feature is switched off (code 5005, or a message saying so).

    It is off by default on new installations; a cluster admin turns it on with
    `PUT /v1/admin/features/algorithm-errors` and `{"enabled": true}`.
    """


class Unavailable(AlgorithmiaError):
    """No usable answer: 5xx after every retry, a timeout, or no connection at all."""


class BadResponse(AlgorithmiaError):
    """A 2xx whose body is not JSON, not the documented shape, or carries an `error` key."""


class RequestRejected(AlgorithmiaError):
    """Any other 4xx: the cluster refused the request as made (e.g. 400, 429)."""
