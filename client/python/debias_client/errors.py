"""Exceptions raised by :class:`debias_client.Client`."""

from __future__ import annotations

from typing import Any, Dict, Optional

import grpc


class DebiasError(Exception):
    """A failed call: the gRPC status code name and the server's message.

    Attributes:
        code: gRPC status code name, e.g. ``"INVALID_ARGUMENT"``, ``"NOT_FOUND"``.
        message: the server's (or client's) explanation.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, **extra: Any) -> "DebiasError":
        """Builds the exception from a ``grpc.RpcError`` raised by a stub."""
        code, message = _status_of(error)
        return cls(code, message, **extra)


class IngestError(DebiasError):
    """An ingest stream that broke (or was rejected) before every event was stored.

    Every batch acknowledged before the break is durable; later ones may or may
    not be. Re-sending events that carry an ``event_id`` is safe (a stored id
    with the same content is a no-op); events without one are stored again.

    Attributes:
        events_acknowledged: events the server acknowledged (durable) before the break.
        data_version: the dataset's data_version after the last acknowledged batch
            (0 when none was acknowledged).
    """

    def __init__(self, code: str, message: str, events_acknowledged: int = 0,
                 data_version: int = 0) -> None:
        super().__init__(code, message)
        self.events_acknowledged = events_acknowledged
        self.data_version = data_version


class TrainingError(DebiasError):
    """A training job that ended in state "failed" or "cancelled".

    ``code`` is the model's ``error_code``: e.g. FAILED_PRECONDITION for data
    that cannot train the method or a degenerate model, CANCELLED for a
    cancelled job (docs/API.md, "Error codes").

    Attributes:
        model: the final model record (see :meth:`Client.get_model`), with its
            ``state`` and ``error``.
    """

    def __init__(self, code: str, message: str, model: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(code, message)
        self.model = model if model is not None else {}


def _status_of(error: grpc.RpcError) -> "tuple[str, str]":
    code = "UNKNOWN"
    message = str(error)
    status = getattr(error, "code", None)
    if callable(status):
        try:
            code = status().name
        except Exception:  # pragma: no cover - a non-call RpcError
            pass
    details = getattr(error, "details", None)
    if callable(details):
        try:
            message = details() or ""
        except Exception:  # pragma: no cover
            pass
    return code, message + _hint(code, message)


def _hint(code: str, message: str) -> str:
    """How to fix a message over the size limit (gRPC's own wording says
    only that it is too large)."""
    if code == "RESOURCE_EXHAUSTED" and ("larger than max" in message
                                         or "exceeds limit" in message):
        return (" (split the request: a smaller batch_size for ingest, fewer users or "
                "items per call; or start debiasd with a larger --max_message_bytes)")
    return ""
