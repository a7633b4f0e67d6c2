"""The exception tree of ssshelf.

Every error ssshelf raises on purpose is a subclass of :class:`SSShelfError`,
so ``except SSShelfError`` catches all of them and nothing else::

    SSShelfError
    ├── ConfigurationError        bad storage URL, missing bucket name, …
    ├── InvalidArgument           an argument out of range (also a ValueError)
    ├── InvalidKeyError           a key part, pk or key that cannot be stored
    ├── SerializationError        an item that cannot be (de)serialised
    │   └── CorruptItemError      a stored object that cannot be read back
    ├── StorageError              a backend request failed (names op and key)
    │   ├── PreconditionFailed    a conditional put/delete did not hold
    │   ├── StorageUnavailable    endpoint unreachable, retries exhausted
    │   │   └── OutcomeUnknown    a write may or may not have taken effect
    │   ├── BucketNotFound
    │   ├── AccessDenied
    │   ├── UnsupportedOperation  the store lacks a feature (conditional writes)
    │   ├── StorageClosed         the storage was closed (requests in flight too)
    │   └── DeleteFailed          delete_many left some keys (``failures``)
    ├── ItemNotFound              update_item of a pk with no item (also a KeyError)
    ├── BulkWriteError            add_items/remove_items stopped at an item (``written``)
    ├── ConflictError             optimistic concurrency lost (stale version)
    │   ├── AlreadyExistsError    create_item of a pk that exists
    │   └── UniqueViolation       a unique collection value is taken
    ├── ClosedError               a closed blocking twin was used (also a RuntimeError)
    └── ReentrantCallError        a blocking call from the loop it would wait for (RuntimeError)
"""

from __future__ import annotations


class SSShelfError(Exception):
    """Base class of every error raised by ssshelf."""


class ConfigurationError(SSShelfError):
    """The library was set up wrongly: unknown URL scheme, missing bucket, …"""


class InvalidArgument(SSShelfError, ValueError):
    """An argument is out of range or of the wrong kind (page size, batch size, …)."""


class InvalidKeyError(SSShelfError, ValueError):
    """A key, key part or primary key cannot be stored.

    Raised before any request is made.  ``collection`` and ``part`` name
    what was rejected when known.
    """

    def __init__(self, message: str, *, collection: str | None = None, part: object = None) -> None:
        super().__init__(message)
        self.collection = collection
        self.part = part


class SerializationError(SSShelfError):
    """An item could not be serialised (before any request) or deserialised."""


class CorruptItemError(SerializationError):
    """A stored object could not be decoded; ``key`` names it."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class StorageError(SSShelfError):
    """A storage request failed.  ``operation`` and ``key`` say which."""

    def __init__(
        self, message: str, *, operation: str | None = None, key: str | None = None
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.key = key


class PreconditionFailed(StorageError):
    """A conditional write (``if_absent`` / ``if_version``) did not hold."""


class StorageUnavailable(StorageError):
    """The store could not be reached, or kept failing after every retry."""


class OutcomeUnknown(StorageUnavailable):
    """A write was sent but its outcome is not known: it may have taken effect
    (now or later, within the request deadline) or not.

    Raised instead of :class:`PreconditionFailed` when a retried conditional
    write meets "precondition failed" and the stored object is not the one
    sent, and instead of a plain :class:`StorageUnavailable` whenever a write
    request may have reached the store.  A caller must not treat it as "nothing
    changed".
    """


class NotSent(StorageUnavailable):
    """A request was never sent: it waited for the client's own request slots
    past the deadline its caller set (see :mod:`ssshelf.storages.sending`).
    It changed nothing."""


class BucketNotFound(StorageError):
    """The configured bucket does not exist."""


class AccessDenied(StorageError):
    """The credentials were refused or lack permission."""


class UnsupportedOperation(StorageError):
    """The store cannot do what was asked (e.g. conditional writes)."""


class ItemNotFound(SSShelfError, KeyError):
    """An operation needs an item that is not stored (``update_item`` of a missing pk).

    Also a :class:`KeyError`, as a missing key is in Python.
    """

    def __init__(self, message: str, *, pk: str) -> None:
        super().__init__(message)
        self.pk = pk

    def __str__(self) -> str:
        return str(self.args[0])


class BulkWriteError(SSShelfError):
    """A bulk operation stopped at one item.

    ``written`` counts the items acknowledged before it stopped, ``index`` is
    the failing item's position in the input and ``item`` the item itself;
    ``error`` (also ``__cause__``) is what went wrong with it.
    """

    def __init__(
        self, message: str, *, written: int, index: int, item: object, error: BaseException
    ) -> None:
        super().__init__(message)
        self.written = written
        self.index = index
        self.item = item
        self.error = error


class ConflictError(SSShelfError):
    """A write lost an optimistic-concurrency race (stale ``if_version``)."""

    def __init__(self, message: str, *, pk: str | None = None) -> None:
        super().__init__(message)
        self.pk = pk


class AlreadyExistsError(ConflictError):
    """``create_item`` found an item with the same pk already stored."""


class UniqueViolation(ConflictError):
    """A value of a unique collection is already held by another item."""

    def __init__(
        self,
        message: str,
        *,
        collection: str,
        value: object,
        pk: str | None = None,
        owner: str | None = None,
    ) -> None:
        super().__init__(message, pk=pk)
        self.collection = collection
        self.value = value
        self.owner = owner


class DeleteFailed(StorageError):
    """``delete_many`` could not delete some keys; ``failures`` maps key → reason."""

    def __init__(self, message: str, *, failures: dict[str, str]) -> None:
        super().__init__(message, operation="delete_many")
        self.failures = failures


class StorageClosed(StorageError):
    """The storage was closed; a request in flight at ``close()`` is answered with this."""


class RetriesDone:
    """Mixed into a :class:`StorageUnavailable` raised after the backend's own
    retries (S3Storage): a wrapper such as ``RetryingStorage`` must not retry it
    again, so that the total time to give up stays the backend's bound."""


class ClosedError(SSShelfError, RuntimeError):
    """A blocking twin (``Manager.sync(...)``) was used after ``close()``, or in
    a process forked after it was opened (its loop thread is not there)."""


class ReentrantCallError(SSShelfError, RuntimeError):
    """A blocking call was made from the event-loop thread it would have to
    wait for: from an ``update_item`` function, a progress callback or an
    iterable that the blocking twin runs on its own loop.  Waiting there
    would deadlock, so the call is refused before anything is sent.
    """
