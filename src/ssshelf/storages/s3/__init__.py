"""The S3 backend: :class:`S3Storage` over a lean HTTP transport of its own.

Modules, each with one job: ``_storage`` (the contract, retries, the
lost-answer logic), ``_http`` (HTTP/1.1 connections of one event loop),
``_signing`` (SigV4), ``_xml`` (the few XML answers), ``_addressing``
(endpoints, path-style and virtual-hosted), ``_credentials`` (botocore's
credential and region resolvers), ``_loops`` (resources per event loop),
``_errors`` (judging failures, wording errors), ``_compat`` (server quirks),
``_answers`` (reading successful answers), ``_settings`` (checking settings).
"""

from ._storage import DEFAULT_RETRIES, RetryPolicy, S3Storage

__all__ = ["DEFAULT_RETRIES", "RetryPolicy", "S3Storage"]
