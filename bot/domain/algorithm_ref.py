"""How a user names an algorithm: `owner/name` or `id:UUID`, validated before any request.

The API's `/v1/algorithms/X/errors` also matches `/v1/algorithms/{owner}/{name}` with `errors`
as the name, so a UUID must match the API's own pattern before the UUID route is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OWNER_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
OWNER_MAX_LENGTH = 30
NAME_PATTERN = re.compile(r"[A-Za-z0-9_]+")
UUID_PATTERN = re.compile(
    r"[a-zA-Z0-9]{8}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{12}"
)


class InvalidAlgorithmRef(ValueError):
    """The text does not name an algorithm the API could look up."""


@dataclass(frozen=True, slots=True)
class OwnerName:
    owner: str
    name: str

    def __post_init__(self) -> None:
        if len(self.owner) > OWNER_MAX_LENGTH or not OWNER_PATTERN.fullmatch(self.owner):
            raise InvalidAlgorithmRef(
                f"`{self.owner}` is not an owner: a letter, then letters, digits or `_`,"
                f" at most {OWNER_MAX_LENGTH} characters"
            )
        if not NAME_PATTERN.fullmatch(self.name):
            raise InvalidAlgorithmRef(
                f"`{self.name}` is not an algorithm name: letters, digits and `_` only"
            )

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class AlgorithmId:
    uuid: str

    def __post_init__(self) -> None:
        if not UUID_PATTERN.fullmatch(self.uuid):
            raise InvalidAlgorithmRef(
                f"`{self.uuid}` is not an algorithm id: expected 8-4-4-4-12 letters and digits"
            )

    def __str__(self) -> str:
        return f"id:{self.uuid}"


AlgorithmRef = OwnerName | AlgorithmId


def parse_algorithm_ref(text: str) -> AlgorithmRef:
    """Read `owner/name` or `id:UUID`; raise `InvalidAlgorithmRef` saying what is wrong."""
    if text[:3].lower() == "id:":
        return AlgorithmId(text[3:])
    owner, slash, name = text.partition("/")
    if not slash or not owner or not name:
        raise InvalidAlgorithmRef(f"`{text}` is not an algorithm: write `owner/name` or `id:UUID`")
    return OwnerName(owner, name)
