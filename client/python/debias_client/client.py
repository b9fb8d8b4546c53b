"""A thin, typed wrapper over the debias gRPC services.

Every method maps to one RPC (see proto/debias/v1/*.proto for the exact
contracts and limits) and converts protobuf messages to plain Python: dicts,
lists, numpy arrays and pandas DataFrames. Failed calls raise
:class:`DebiasError` carrying the gRPC status code name and the server's
message.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Literal, Mapping,
                    Optional, Sequence, Tuple, Union, overload)

import grpc
import numpy as np
from google.protobuf import descriptor as _descriptor
from google.protobuf import json_format
from google.protobuf.message import Message

from debias_client._proto.debias.v1 import admin_service_pb2 as ad_pb2
from debias_client._proto.debias.v1 import admin_service_pb2_grpc as ad_grpc
from debias_client._proto.debias.v1 import common_pb2 as common_pb2
from debias_client._proto.debias.v1 import dataset_service_pb2 as ds_pb2
from debias_client._proto.debias.v1 import dataset_service_pb2_grpc as ds_grpc
from debias_client._proto.debias.v1 import evaluation_service_pb2 as ev_pb2
from debias_client._proto.debias.v1 import evaluation_service_pb2_grpc as ev_grpc
from debias_client._proto.debias.v1 import model_service_pb2 as ms_pb2
from debias_client._proto.debias.v1 import model_service_pb2_grpc as ms_grpc
from debias_client._proto.debias.v1 import scoring_service_pb2 as sc_pb2
from debias_client._proto.debias.v1 import scoring_service_pb2_grpc as sc_grpc
from debias_client._proto.grpc.health.v1 import health_pb2, health_pb2_grpc
from debias_client.errors import DebiasError, IngestError, TrainingError

# An event for ingest(): a dict keyed like Interaction's fields, or a tuple in
# the order of EVENT_FIELDS.
Event = Union[Mapping[str, Any], Sequence[Any]]
# Documents to rank by their features: (item key, feature vector) pairs.
Candidates = Sequence[Tuple[str, Sequence[float]]]

#: Positional order of tuple events and the DataFrame columns ingest() reads.
EVENT_FIELDS: Tuple[str, ...] = ("user", "item", "label", "timestamp", "list_id", "position",
                                 "propensity")
_EXTRA_EVENT_FIELDS = ("features", "event_id")
_ALL_EVENT_FIELDS = EVENT_FIELDS + _EXTRA_EVENT_FIELDS

# EvaluateRequest fields that evaluate() accepts as keyword options.
_EVALUATE_OPTIONS = tuple(f.name for f in ev_pb2.EvaluateRequest.DESCRIPTOR.fields
                          if f.name not in ("model_id", "model", "dataset"))

#: A model reference: an id (int or digits), "NAME" (its stable label, else
#: its latest ready version), "NAME:VERSION" or "NAME@LABEL", as debiasctl's
#: --model.
ModelRef = Union[int, str]
_NAME = r"[a-z0-9][a-z0-9._-]{0,62}"
_REF = re.compile(rf"^({_NAME})(?::([0-9]+)|@({_NAME}))?$")

# Calls that change nothing on the server: retried on UNAVAILABLE (a replica
# that went away) by gRPC's retry policy.
_IDEMPOTENT = [{"service": "debias.v1.ScoringService"},
               {"service": "debias.v1.EvaluationService", "method": "Evaluate"},
               {"service": "debias.v1.ModelService", "method": "GetModel"},
               {"service": "debias.v1.ModelService", "method": "ListModels"},
               {"service": "debias.v1.ModelService", "method": "ListMethods"},
               {"service": "debias.v1.ModelService", "method": "GetModelLabels"},
               {"service": "debias.v1.DatasetService", "method": "ListDatasets"},
               {"service": "debias.v1.DatasetService", "method": "GetDataset"},
               {"service": "debias.v1.DatasetService", "method": "GetStats"},
               {"service": "grpc.health.v1.Health", "method": "Check"}]


def service_config(lb_policy: str = "", retry_unavailable: bool = True) -> str:
    """The channel service config (JSON) the Client sets: the load-balancing
    policy with client-side health checking, and the UNAVAILABLE retry policy
    of the read-only calls (the same as the C++ client's)."""
    config: Dict[str, Any] = {}
    if lb_policy:
        config["loadBalancingConfig"] = [{lb_policy: {}}]
        config["healthCheckConfig"] = {"serviceName": ""}
    if retry_unavailable:
        config["methodConfig"] = [{
            "name": _IDEMPOTENT,
            "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.05s", "maxBackoff": "1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]
    return json.dumps(config)


def parse_model_ref(model: ModelRef) -> common_pb2.ModelRef:
    """A ModelRef message from an id or "NAME", "NAME:VERSION", "NAME@LABEL".

    Raises:
        DebiasError: INVALID_ARGUMENT for anything else.
    """
    if isinstance(model, int) or (isinstance(model, str) and model.isdigit()):
        if int(model) < 1:
            raise DebiasError("INVALID_ARGUMENT", f"model {model!r}: an id must be >= 1")
        return common_pb2.ModelRef(id=int(model))
    m = _REF.match(model) if isinstance(model, str) else None
    if m is None or (m.group(2) is not None and int(m.group(2)) < 1):
        raise DebiasError("INVALID_ARGUMENT",
                          f"model {model!r}: expected an id, NAME, NAME:VERSION or NAME@LABEL "
                          f"with NAME matching {_NAME}")
    ref = common_pb2.ModelRef(name=m.group(1))
    if m.group(2) is not None:
        ref.version = int(m.group(2))
    if m.group(3) is not None:
        ref.label = m.group(3)
    return ref


#: The default server address, as debiasctl's.
DEFAULT_TARGET = "127.0.0.1:50051"


def _job_error_code(model: Dict[str, Any]) -> str:
    """The status code of a job that ended without a ready model: the one the
    server stored (the code an RPC gives for the same kind of error)."""
    code = model.get("error_code") or ""
    if code:
        return code
    return "CANCELLED" if model.get("state") == "cancelled" else "UNKNOWN"


class IngestResult(int):
    """What an ingest stored: the int is the number of events acknowledged
    (durable); ``events_stored`` of them were stored as new events and
    ``events_duplicate`` added nothing (an event_id already stored with the
    same content)."""

    events_stored: int
    events_duplicate: int
    data_version: int

    def __new__(cls, acknowledged: int, *, events_stored: int, events_duplicate: int,
                data_version: int) -> "IngestResult":
        obj = super().__new__(cls, acknowledged)
        obj.events_stored = events_stored
        obj.events_duplicate = events_duplicate
        obj.data_version = data_version
        return obj

    def __str__(self) -> str:  # prints as the count, like the int it is
        return str(int(self))

    def __repr__(self) -> str:
        return (f"IngestResult({int(self)}, events_stored={self.events_stored}, "
                f"events_duplicate={self.events_duplicate}, data_version={self.data_version})")


class Client:
    """Client of one debiasd server.

    Every connection setting left out (None) is read from the environment
    like debiasctl reads it: ``DEBIAS_SERVER`` (else 127.0.0.1:50051),
    ``DEBIAS_TOKEN``, and for TLS ``DEBIAS_TLS_CA``, ``DEBIAS_TLS_CERT``,
    ``DEBIAS_TLS_KEY``, ``DEBIAS_TLS_SERVER_NAME`` (the environment
    counterparts of debiasctl's --tls-ca, --tls-cert, --tls-key and
    --tls-server-name). So ``Client()`` connects where ``debiasctl`` does.

    Args:
        target: ``host:port`` of the server, or a gRPC target of several
            (``ipv4:127.0.0.1:7001,127.0.0.1:7002``, ``dns:///name:port``);
            None: ``$DEBIAS_SERVER`` or 127.0.0.1:50051.
        lb_policy: "" (gRPC's pick_first: one server) or "round_robin" (each
            call to the next healthy address of the target; replicas that
            are not SERVING get none).
        retry_unavailable: retry UNAVAILABLE on the read-only calls (Score,
            TopK, Evaluate, GetModel, ...), so a replica that dies costs no
            failed call while another is up.
        timeout: deadline in seconds of every unary call (and of the streaming
            calls unless they are given their own ``timeout``).
        token: bearer token, sent as ``authorization`` metadata when the server
            runs with ``--auth_tokens``; None: ``$DEBIAS_TOKEN``; "": none.
        credentials: channel credentials for a TLS server
            (``grpc.ssl_channel_credentials(...)``); when given, the tls_*
            arguments and variables are not read.
        tls_ca: PEM file of the CA that signed the server certificate; setting
            it (or ``tls_cert``) turns TLS on (without it the system roots are
            trusted). None: ``$DEBIAS_TLS_CA``; "": unset.
        tls_cert, tls_key: PEM client certificate and private key for mutual
            TLS (both or neither). None: ``$DEBIAS_TLS_CERT`` / ``$DEBIAS_TLS_KEY``.
        tls_server_name: name to check in the server certificate instead of
            the target's host. None: ``$DEBIAS_TLS_SERVER_NAME``.

    Raises:
        DebiasError: INVALID_ARGUMENT when a TLS file cannot be read, or a
            certificate comes without its key (or the reverse).

    Usable as a context manager (closes the channel). Thread-safe like the
    underlying grpc channel: several threads may call one Client.
    """

    def __init__(self, target: Optional[str] = None, timeout: float = 30.0, *,
                 token: Optional[str] = None,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None,
                 tls_server_name: Optional[str] = None,
                 lb_policy: str = "", retry_unavailable: bool = True) -> None:
        target, token, credentials, options = connection_settings(
            target, token, credentials, tls_ca, tls_cert, tls_key, tls_server_name,
            lb_policy, retry_unavailable)
        self.target = target
        self.timeout = timeout
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        attach_stubs(self, self._channel, token)

    # --- lifecycle -------------------------------------------------------

    def close(self) -> None:
        """Closes the channel; the client is unusable afterwards."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method: Callable[..., Any], request: Message,
              timeout: Optional[float] = None) -> Any:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout,
                          metadata=self._metadata)
        except grpc.RpcError as e:
            raise DebiasError.from_rpc_error(e) from None

    # --- health ----------------------------------------------------------

    def health(self, service: str = "") -> str:
        """Returns the serving status name of ``service`` ("" = the server):
        "SERVING", "NOT_SERVING" or "UNKNOWN"."""
        resp = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def wait_until_serving(self, timeout: float = 10.0) -> None:
        """Polls health() until the server answers SERVING.

        Raises:
            DebiasError: code DEADLINE_EXCEEDED when it does not within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                status = self.health()
                if status == "SERVING":
                    return
                last = status
            except DebiasError as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise DebiasError("DEADLINE_EXCEEDED",
                                  f"{self.target} not SERVING after {timeout} s: {last}")
            time.sleep(0.05)

    # --- datasets --------------------------------------------------------

    def create_dataset(self, name: str, description: str = "",
                       feedback: str = "", dedup: str = "") -> Dict[str, Any]:
        """Creates an empty dataset; returns its metadata (see Dataset).

        ``feedback`` is "", "explicit", "implicit" or "clicklog". ``dedup``
        is "" (every event without an event_id is stored) or "natural_key"
        (such events with the same user, item, timestamp, list_id and
        position replace each other). ALREADY_EXISTS if the name is taken.
        """
        req = ds_pb2.CreateDatasetRequest(name=name, description=description, feedback=feedback,
                                          dedup=dedup)
        return message_to_dict(self._call(self._datasets.CreateDataset, req))

    def list_datasets(self) -> List[Dict[str, Any]]:
        """All datasets' metadata, ordered by name."""
        resp = self._call(self._datasets.ListDatasets, ds_pb2.ListDatasetsRequest())
        return [message_to_dict(d) for d in resp.datasets]

    def get_dataset(self, name: str) -> Dict[str, Any]:
        """One dataset's metadata. NOT_FOUND if it does not exist."""
        return message_to_dict(
            self._call(self._datasets.GetDataset, ds_pb2.GetDatasetRequest(name=name)))

    def delete_dataset(self, name: str) -> int:
        """Deletes a dataset and its events; returns the number of events deleted."""
        resp = self._call(self._datasets.DeleteDataset, ds_pb2.DeleteDatasetRequest(name=name))
        return int(resp.events_deleted)

    def stats(self, name: str) -> Dict[str, Any]:
        """Counts of a dataset (see DatasetStats): events, users, items,
        positives, zero_labels, min/max_label, lists, max_position,
        with_propensity, feature_dim, density, feedback, data_version."""
        return message_to_dict(
            self._call(self._datasets.GetStats, ds_pb2.GetStatsRequest(name=name)))

    def ingest(self, dataset: str, events: Union[Iterable[Event], Any], *,
               create_if_missing: bool = True, batch_size: int = 8192,
               on_progress: Optional[Callable[[int], None]] = None,
               timeout: Optional[float] = None) -> "IngestResult":
        """Streams events into ``dataset`` over the bidirectional Ingest RPC.

        An event's ``event_id`` is its idempotency key: re-sending it with
        the same content adds nothing (counted in ``events_duplicate``), with
        other content it is refused (ALREADY_EXISTS). Events without an id
        are all stored, so set ids when a pipeline may retry.

        Args:
            dataset: target dataset name.
            events: a pandas DataFrame with columns user, item and optionally
                label, timestamp, list_id, position, propensity (also features,
                event_id), or an iterable of dicts with those keys, or of tuples
                in the order of ``EVENT_FIELDS`` (trailing fields may be left
                out). A left-out ``label`` (no column, no key) is 1.0 (a click);
                a missing one (None, pd.NA) is an error. None/pd.NA in an
                optional field leaves it unset. A NaN or infinite label or
                propensity is an error, never turned into a click or "unset".
                Consumed lazily, batch by batch (a DataFrame's label and
                propensity columns are checked whole before anything is sent).
            create_if_missing: create the dataset when it does not exist.
            batch_size: events per message, in [1, 100000]; each batch is
                stored atomically.
            on_progress: called with the cumulative acknowledged count after
                every acknowledged batch.
            timeout: deadline of the whole stream in seconds; None: no deadline.

        Returns:
            IngestResult: an int, the number of events acknowledged (durable),
            with ``events_stored`` (new events) and ``events_duplicate``
            (already stored: added nothing) and ``data_version``.

        Raises:
            IngestError: the stream broke or the server rejected a batch (e.g.
                INVALID_ARGUMENT naming the bad event), or a local event could
                not be converted (INVALID_ARGUMENT, "row N: ..." with its 0-based
                place in ``events``, e.g. "row 3: label=nan: must be a finite
                number"); its ``events_acknowledged`` says how many events are
                stored.
            ValueError: batch_size out of range, or a DataFrame with an
                unknown column or without user/item (checked before sending).
        """
        if not 1 <= batch_size <= 100000:
            raise ValueError(f"batch_size={batch_size}: must be in [1, 100000]")
        try:
            rows = _event_kwargs(events)
        except BadRow as e:
            raise IngestError("INVALID_ARGUMENT", str(e)) from None
        state: Dict[str, Any] = {"error": None, "index": 0, "sent": 0}

        def count(_: Dict[str, Any]) -> None:
            state["index"] += 1

        def requests() -> Iterator[ds_pb2.IngestRequest]:
            try:
                for req in ingest_requests(dataset, rows, create_if_missing, batch_size,
                                           on_row=count):
                    state["sent"] += len(req.events)
                    yield req
            except Exception as e:  # reported after the stream closes
                state["error"] = e

        acked = 0
        version = 0
        stored = duplicate = 0
        call = self._datasets.Ingest(requests(), timeout=timeout, metadata=self._metadata)
        try:
            for resp in call:
                acked = int(resp.events_acknowledged)
                stored = int(resp.events_stored)
                duplicate = int(resp.events_duplicate)
                version = int(resp.data_version)
                if on_progress is not None:
                    on_progress(acked)
        except grpc.RpcError as e:
            raise IngestError.from_rpc_error(e, events_acknowledged=acked,
                                             data_version=version) from None
        finally:
            call.cancel()  # no-op when the stream completed
        if state["error"] is not None:
            err = state["error"]
            message = str(err) if isinstance(err, BadRow) else f"row {state['index']}: {err}"
            raise IngestError("INVALID_ARGUMENT", message,
                              events_acknowledged=acked, data_version=version) from err
        if acked != state["sent"]:
            raise IngestError("DATA_LOSS",
                              f"server acknowledged {acked} of {state['sent']} events",
                              events_acknowledged=acked, data_version=version)
        return IngestResult(acked, events_stored=stored, events_duplicate=duplicate,
                            data_version=version)

    def export(self, name: str, batch_size: int = 0,
               timeout: Optional[float] = None) -> Any:
        """Every event of a dataset, in user-major order, as a pandas DataFrame
        with the columns of ``EVENT_FIELDS`` plus event_id (None where unset)
        and features (only when some event has features)."""
        import pandas as pd

        columns: Dict[str, List[Any]] = {c: [] for c in EVENT_FIELDS + ("event_id",)}
        features: List[List[float]] = []
        call = self._datasets.Export(ds_pb2.ExportRequest(name=name, batch_size=batch_size),
                                     timeout=timeout, metadata=self._metadata)
        try:
            for resp in call:
                for ev in resp.events:
                    columns["user"].append(ev.user)
                    columns["item"].append(ev.item)
                    columns["label"].append(ev.label)
                    columns["timestamp"].append(
                        ev.timestamp if ev.HasField("timestamp") else None)
                    columns["list_id"].append(ev.list_id if ev.HasField("list_id") else None)
                    columns["position"].append(
                        ev.position if ev.HasField("position") else None)
                    columns["propensity"].append(
                        ev.propensity if ev.HasField("propensity") else None)
                    columns["event_id"].append(ev.event_id or None)
                    features.append(list(ev.features))
        except grpc.RpcError as e:
            raise DebiasError.from_rpc_error(e) from None
        frame = pd.DataFrame({
            "user": pd.Series(columns["user"], dtype=object),
            "item": pd.Series(columns["item"], dtype=object),
            "label": pd.Series(columns["label"], dtype=np.float32),
            "timestamp": pd.array(columns["timestamp"], dtype="Int64"),
            "list_id": pd.Series(columns["list_id"], dtype=object),
            "position": pd.array(columns["position"], dtype="Int32"),
            "propensity": pd.array(columns["propensity"], dtype="Float32"),
            "event_id": pd.Series(columns["event_id"], dtype=object),
        })
        if any(features):
            frame["features"] = features
        return frame

    # --- models ----------------------------------------------------------

    @overload
    def train(self, dataset: str, loss: str, params: Optional[Mapping[str, Any]] = ...,
              seed: int = ..., on_progress: Optional[Callable[[Dict[str, Any]], None]] = ...,
              *, feedback: str = ..., propensity: str = ..., clip: Optional[float] = ...,
              threshold: Optional[float] = ..., mar_dataset: str = ...,
              timeout: Optional[float] = ..., check: bool = ...,
              detach: Literal[False] = ..., name: str = ...) -> Dict[str, Any]: ...

    @overload
    def train(self, dataset: str, loss: str, params: Optional[Mapping[str, Any]] = ...,
              seed: int = ..., on_progress: Optional[Callable[[Dict[str, Any]], None]] = ...,
              *, feedback: str = ..., propensity: str = ..., clip: Optional[float] = ...,
              threshold: Optional[float] = ..., mar_dataset: str = ...,
              timeout: Optional[float] = ..., check: bool = ...,
              detach: Literal[True], name: str = ...) -> "TrainingJob": ...

    def train(self, dataset: str, loss: str, params: Optional[Mapping[str, Any]] = None,
              seed: int = 0, on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
              *, feedback: str = "", propensity: str = "", clip: Optional[float] = None,
              threshold: Optional[float] = None, mar_dataset: str = "",
              timeout: Optional[float] = None, check: bool = True,
              detach: bool = False, name: str = "") -> Union[Dict[str, Any], "TrainingJob"]:
        """Trains a model (server-streaming Train RPC): waits for it, or with
        ``detach=True`` returns a :class:`TrainingJob` as soon as the server
        has started the job.

        Args:
            dataset: dataset to train on.
            loss: loss / method name (see list_methods()), e.g. "naive", "relmf".
            params: hyperparameters; values are sent as strings (bools as
                "true"/"false"). Each loss rejects unknown keys.
            seed: random seed; same data, spec and seed give the same model.
            on_progress: called once per epoch with a dict: epoch,
                total_epochs, loss, elapsed_seconds, metrics.
            feedback, propensity, clip, threshold, mar_dataset: see TrainRequest.
            timeout: deadline in seconds; None: no deadline. If the call ends
                early (deadline, KeyboardInterrupt) the server cancels the job.
                With detach=True it bounds only the wait for the job to start.
            detach: return at once a TrainingJob for the job, which goes on in
                the server without this call: ``job.progress()``,
                ``job.wait()``, ``job.cancel()``. ``on_progress`` and
                ``check`` then apply to ``job.wait()``.
            check: raise TrainingError when the job ends "failed"/"cancelled".
            name: model name ([a-z0-9][a-z0-9._-]{0,62}); the model becomes
                its next version. "": an unnamed model (by id only).

        Returns:
            The final model record as a dict (see get_model()); with
            detach=True a TrainingJob (``job.id`` is the model id).

        Raises:
            DebiasError: the request was rejected (INVALID_ARGUMENT for an
                unknown loss or bad hyperparameters, NOT_FOUND, ...).
            TrainingError: the job failed or was cancelled (with check=True).
        """
        req = ms_pb2.TrainRequest(dataset=dataset, loss=loss, feedback=feedback,
                                  propensity=propensity, seed=seed, mar_dataset=mar_dataset,
                                  detach=detach, name=name)
        for k, v in (params or {}).items():
            req.params[str(k)] = _param_str(v)
        if clip is not None:
            req.clip = clip
        if threshold is not None:
            req.threshold = threshold
        model_id = 0
        final: Optional[Dict[str, Any]] = None
        call = self._models.Train(req, timeout=timeout, metadata=self._metadata)
        try:
            for ev in call:
                kind = ev.WhichOneof("event")
                if kind == "started":
                    model_id = int(ev.started.model_id)
                    if detach:  # the job goes on after the call is cancelled below
                        return TrainingJob(self, model_id, on_progress=on_progress,
                                           check=check)
                elif kind == "progress":
                    if on_progress is not None:
                        on_progress(message_to_dict(ev.progress))
                elif kind == "finished":
                    final = message_to_dict(ev.finished)
        except grpc.RpcError as e:
            raise DebiasError.from_rpc_error(e) from None
        finally:
            call.cancel()  # no-op when the stream completed; else the job stops unless detached
        if final is None:
            raise DebiasError("UNAVAILABLE",
                              f"training stream of model {model_id} ended without a model")
        if check and final.get("state") != "ready":
            raise TrainingError(_job_error_code(final),
                                f"model {final.get('id')} ended {final.get('state')}: "
                                f"{final.get('error', '')}", model=final)
        return final

    def list_models(self, dataset: str = "") -> List[Dict[str, Any]]:
        """All models (only those trained on ``dataset`` when given), newest first."""
        resp = self._call(self._models.ListModels, ms_pb2.ListModelsRequest(dataset=dataset))
        return [message_to_dict(m) for m in resp.models]

    def get_model(self, model_id: ModelRef) -> Dict[str, Any]:
        """One model (an id or "NAME", "NAME:VERSION", "NAME@LABEL"): id,
        name, version, labels, dataset, data_version, state ("training",
        "ready", "failed", "cancelled"), spec, metrics, diagnostics, error,
        times, progress (the per-epoch curve), users, items. NOT_FOUND if
        absent."""
        return message_to_dict(self._call(
            self._models.GetModel, ms_pb2.GetModelRequest(model=parse_model_ref(model_id))))

    def set_model_label(self, name: str, label: str, version: int) -> Dict[str, int]:
        """Points ``label`` of ``name`` at ``version`` (0 removes it),
        atomically; returns every label of the name. NOT_FOUND for an unknown
        name or version, FAILED_PRECONDITION for a version that is not ready."""
        resp = self._call(self._models.SetModelLabel,
                          ms_pb2.SetModelLabelRequest(name=name, label=label, version=version))
        return dict(resp.labels)

    def get_model_labels(self, name: str) -> Dict[str, Any]:
        """{"labels": {label: version}, "versions": [...]} of a model name."""
        resp = self._call(self._models.GetModelLabels, ms_pb2.GetModelLabelsRequest(name=name))
        return {"labels": dict(resp.labels), "versions": list(resp.versions)}

    def delete_model(self, model_id: int) -> None:
        """Deletes a model (a running job is cancelled first)."""
        self._call(self._models.DeleteModel, ms_pb2.DeleteModelRequest(id=model_id))

    def cancel_training(self, model_id: int) -> Dict[str, Any]:
        """Asks a running job to stop; FAILED_PRECONDITION if it is not training."""
        return message_to_dict(
            self._call(self._models.CancelTraining, ms_pb2.CancelTrainingRequest(id=model_id)))

    def list_methods(self) -> List[Dict[str, Any]]:
        """The losses and propensity estimators the server knows: dicts with
        kind ("loss"/"propensity"), name, description, feedback."""
        resp = self._call(self._models.ListMethods, ms_pb2.ListMethodsRequest())
        return [message_to_dict(m) for m in resp.methods]

    # --- scoring ---------------------------------------------------------

    def score(self, model_id: ModelRef, user: str, items: Sequence[str], *,
              candidates: Optional[Candidates] = None) -> np.ndarray:
        """Scores ``items`` for ``user`` (or feature ``candidates`` for
        rankers); returns a float32 array in request order. Higher is better.
        NOT_FOUND for a user or item the model never saw. ``model_id`` is any
        model reference (an id, "NAME", "NAME:VERSION", "NAME@LABEL")."""
        req = sc_pb2.ScoreRequest(model=parse_model_ref(model_id), user=user,
                                  items=[str(i) for i in items])
        _add_candidates(req.candidates, candidates)
        resp = self._call(self._scoring.Score, req)
        return np.asarray(resp.scores, dtype=np.float32)

    def topk(self, model_id: ModelRef, user: str, k: int, exclude_seen: bool = False, *,
             candidates: Optional[Candidates] = None,
             retrieval: str = "auto") -> Tuple[List[str], np.ndarray]:
        """The ``k`` best items for ``user``, best first: (item keys, float32 scores).
        ``retrieval``: "auto", "exact" or "approximate" (TopKRequest.retrieval)."""
        req = sc_pb2.TopKRequest(model=parse_model_ref(model_id), user=user, k=k,
                                 exclude_seen=exclude_seen, retrieval=retrieval)
        _add_candidates(req.candidates, candidates)
        resp = self._call(self._scoring.TopK, req)
        return list(resp.items), np.asarray(resp.scores, dtype=np.float32)

    def batch_score(self, model_id: ModelRef,
                    requests: Mapping[str, Sequence[str]]) -> Dict[str, np.ndarray]:
        """Scores many users in one call: {user: items} -> {user: float32 scores}."""
        req = sc_pb2.BatchScoreRequest(model=parse_model_ref(model_id))
        users = list(requests.keys())
        for u in users:
            req.requests.add(user=u, items=[str(i) for i in requests[u]])
        resp = self._call(self._scoring.BatchScore, req)
        return {u: np.asarray(r.scores, dtype=np.float32)
                for u, r in zip(users, resp.responses)}

    def batch_topk(self, model_id: ModelRef, users: Sequence[str], k: int,
                   exclude_seen: bool = False, *, retrieval: str = "auto",
                   batch: int = 1000, timeout: Optional[float] = None) -> Any:
        """The ``k`` best items of each user (BatchTopK), ``batch`` users per
        call (at most the server's max_batch_users). Returns a pandas DataFrame
        with one row per user and rank (columns user, rank from 1, item,
        score as float32), users in the order given; without pandas, a list
        of (user, rank, item, score) tuples in the same order."""
        if batch < 1:
            raise ValueError(f"batch={batch}: must be >= 1")
        rows_user: List[str] = []
        rows_rank: List[int] = []
        rows_item: List[str] = []
        rows_score: List[float] = []
        users = [str(u) for u in users]
        for begin in range(0, len(users), batch):
            req = sc_pb2.BatchTopKRequest(model=parse_model_ref(model_id),
                                          users=users[begin:begin + batch],
                                          k=k, exclude_seen=exclude_seen, retrieval=retrieval)
            call = self._scoring.BatchTopK(req, timeout=self.timeout if timeout is None else timeout,
                                           metadata=self._metadata)
            try:
                for resp in call:
                    for r in resp.results:
                        n = len(r.items)
                        rows_user.extend([r.user] * n)
                        rows_rank.extend(range(1, n + 1))
                        rows_item.extend(r.items)
                        rows_score.extend(r.scores)
            except grpc.RpcError as e:
                raise DebiasError.from_rpc_error(e) from None
        try:
            import pandas as pd
        except ImportError:
            return list(zip(rows_user, rows_rank, rows_item, rows_score))
        return pd.DataFrame({
            "user": pd.Series(rows_user, dtype=object),
            "rank": pd.Series(rows_rank, dtype=np.int32),
            "item": pd.Series(rows_item, dtype=object),
            "score": pd.Series(rows_score, dtype=np.float32),
        })

    def get_propensities(self, model_id: ModelRef,
                         pairs: Sequence[Tuple[str, str]] = ()) -> Dict[str, np.ndarray]:
        """Propensities a model was trained with: "position_propensities"
        (float64, position-bias models) and "pair_propensities" (float32,
        P(observed) of each (user, item) pair, in order)."""
        req = sc_pb2.GetPropensitiesRequest(model=parse_model_ref(model_id))
        for u, i in pairs:
            req.pairs.add(user=u, item=i)
        resp = self._call(self._scoring.GetPropensities, req)
        return {"position_propensities": np.asarray(resp.position_propensities,
                                                    dtype=np.float64),
                "pair_propensities": np.asarray(resp.pair_propensities, dtype=np.float32)}

    def sample_negatives(self, user: str, n: int, *, model_id: ModelRef = 0, dataset: str = "",
                         sampler: str = "uniform", seed: int = 0,
                         power: Optional[float] = None) -> List[str]:
        """Negative items for ``user``, excluding their positives.

        Give a trained ``model_id`` (any sampler; "nbpo" uses its flip model)
        or a ``dataset`` ("uniform", "popularity"). ``seed`` 0 draws a fresh
        seed; ``power`` is the popularity exponent in [0, 10]. May return fewer
        than ``n`` items when the user has seen almost all.
        """
        req = sc_pb2.SampleNegativesRequest(dataset=dataset, user=user, n=n, sampler=sampler,
                                            seed=seed)
        if model_id:
            req.model.CopyFrom(parse_model_ref(model_id))
        if power is not None:
            req.power = power
        return list(self._call(self._scoring.SampleNegatives, req).items)

    # --- moving models and backups ----------------------------------------

    def export_model(self, model_id: int, path: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Writes a ready model as a snapshot file (ModelSnapshotFile, the
        format of ``debiasctl model export``), via a temporary file and a
        rename so no reader sees half a file. Returns the header as a dict.
        DATA_LOSS when the received parameters do not match the header."""
        snapshot = ms_pb2.ModelSnapshotFile()
        parts: List[bytes] = []
        try:
            for chunk in self._models.ExportModel(ms_pb2.ExportModelRequest(model=parse_model_ref(model_id)),
                                                  timeout=self.timeout if timeout is None
                                                  else timeout, metadata=self._metadata):
                if chunk.HasField("header"):
                    snapshot.header.CopyFrom(chunk.header)
                else:
                    parts.append(chunk.parameters)
        except grpc.RpcError as e:
            raise DebiasError.from_rpc_error(e) from None
        snapshot.parameters = b"".join(parts)
        if len(snapshot.parameters) != snapshot.header.parameters_bytes:
            raise DebiasError("DATA_LOSS", f"model {model_id}: received "
                              f"{len(snapshot.parameters)} parameter bytes, the header says "
                              f"{snapshot.header.parameters_bytes}")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(snapshot.SerializeToString())
        os.replace(tmp, path)
        return message_to_dict(snapshot.header)

    def import_model(self, path: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Loads a snapshot file (from export_model or ``debiasctl model
        export``) as a new ready model on this server; returns its record.
        The server checks the parameters' CRC; INVALID_ARGUMENT for a file
        that is not a snapshot."""
        with open(path, "rb") as f:
            data = f.read()
        snapshot = ms_pb2.ModelSnapshotFile()
        try:
            snapshot.ParseFromString(data)
        except Exception:  # protobuf's DecodeError
            raise DebiasError("INVALID_ARGUMENT", f"{path!r}: not a debias model snapshot") from None
        if not snapshot.HasField("header"):
            raise DebiasError("INVALID_ARGUMENT", f"{path!r}: not a debias model snapshot")

        def chunks() -> Iterator[ms_pb2.ModelChunk]:
            yield ms_pb2.ModelChunk(header=snapshot.header)
            step = 1 << 20
            for off in range(0, len(snapshot.parameters), step):
                yield ms_pb2.ModelChunk(parameters=snapshot.parameters[off:off + step])

        try:
            model = self._models.ImportModel(chunks(), timeout=self.timeout if timeout is None
                                             else timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise DebiasError.from_rpc_error(e) from None
        return message_to_dict(model)

    def backup(self, name: str) -> Dict[str, Any]:
        """A consistent checkpoint of the whole store under the server's
        --backup_dir (admin role): {"path", "bytes", "seconds"}.
        FAILED_PRECONDITION without --backup_dir, ALREADY_EXISTS for a taken name."""
        return message_to_dict(self._call(self._admin.Backup, ad_pb2.BackupRequest(name=name)))

    # --- evaluation ------------------------------------------------------

    def evaluate(self, model_id: ModelRef, dataset: str, **options: Any) -> Dict[str, Any]:
        """Evaluates a model (see EvaluationService.Evaluate).

        Options are EvaluateRequest fields, e.g. ``k=[5, 10]`` (or an int),
        ``threshold``, ``rank_all_items``, ``exclude_dataset``, ``convention``;
        for the log estimators ``estimator`` ("naive", "ips", "snips", "dr"),
        ``propensity_from``, ``propensity_params`` (dict), ``clip``,
        ``bootstrap``, ``seed``, ``confidence``, ``imputation_model_id``,
        ``mar_dataset``, ``max_users``, ``scores`` ({user: {item: score}},
        with model_id=0); for the policy estimators ``policy_estimator``,
        ``target``, ``temperature``, ``tau``, ``lambda_`` (or ``lambda``).

        Returns:
            {"metrics": {name: value}, "intervals": {name: (low, high)},
            "normal_intervals": {name: (low, high)}, "diagnostics": dict,
            "mar_metrics": {name: value}}. Intervals are present for the log
            and policy estimators (percentile bootstrap when bootstrap > 0).

        Raises:
            TypeError: an unknown option name.
            DebiasError: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...
        """
        return _evaluate_result(
            self._call(self._evaluation.Evaluate, _evaluate_request(model_id, dataset, options)))

    def evaluate_policy(self, dataset: str, estimators: Sequence[str] = ("ipw", "snips", "dr"),
                        *, model_id: int = 0,
                        scores: Optional[Union[Mapping[str, Mapping[str, float]], Any]] = None,
                        **options: Any) -> Any:
        """Off-policy value of a policy on a bandit log, several estimators in
        one request (as OBP's ``OffPolicyEvaluation.summarize_off_policy_estimates``).

        The policy is a served model (``model_id``) or your own, given as
        ``scores``: {user: {item: score}} or a DataFrame with columns user,
        item, score; each user's items are its candidates (greedy picks the
        best; ``target="softmax"`` with ``temperature`` spreads over them).
        ``dataset`` must carry the logging probabilities (the propensity
        field). dm/dr-type estimators need ``imputation_model_id`` with
        uploaded scores. Other options as :meth:`evaluate` (``bootstrap``,
        ``clip``, ``tau``, ``lambda_``, ``confidence``, ``seed``).

        Returns:
            a DataFrame, one row per estimator: estimator, value, low, high
            (percentile bootstrap interval when bootstrap > 0, else NaN),
            normal_low, normal_high; ``.attrs["diagnostics"]`` holds the
            server's diagnostics.
        """
        import pandas as pd
        opts = dict(options)
        opts["policy_estimator"] = ",".join(estimators)
        if scores is not None:
            opts["scores"] = _scores_mapping(scores)
        result = self.evaluate(model_id, dataset, **opts)
        return _policy_frame(result, list(estimators), pd)

    def topk_frame(self, model_id: ModelRef, users: Iterable[str], k: int,
                   exclude_seen: bool = False) -> Any:
        """Top-k for many users as a DataFrame with one row per user x rank:
        user, rank (1-based), item, score (batch_topk, BatchTopK calls)."""
        return self.batch_topk(model_id, [str(u) for u in users], k, exclude_seen)

    def score_frame(self, model_id: int, pairs: Any, chunk_users: int = 1000) -> Any:
        """Scores (user, item) pairs given as a DataFrame with columns user and
        item (or an iterable of pairs): the pairs with a ``score`` column, in
        input order. Sent with BatchScore, ``chunk_users`` users per call."""
        import pandas as pd
        frame = (pairs[["user", "item"]].astype(str).reset_index(drop=True)
                 if isinstance(pairs, pd.DataFrame)
                 else pd.DataFrame(list(pairs), columns=["user", "item"]).astype(str))
        by_user: Dict[str, List[int]] = {}
        for idx, user in enumerate(frame["user"]):
            by_user.setdefault(user, []).append(idx)
        out = np.full(len(frame), np.nan, dtype=np.float32)
        users = list(by_user)
        for start in range(0, len(users), chunk_users):
            chunk = users[start:start + chunk_users]
            got = self.batch_score(model_id, {u: frame["item"].iloc[by_user[u]].tolist()
                                              for u in chunk})
            for u in chunk:
                out[by_user[u]] = got[u]
        result = frame.copy()
        result["score"] = out
        return result

    def models_frame(self, dataset: str = "") -> Any:
        """The models as a DataFrame, newest first: id, dataset, state, loss,
        propensity, error_code, error, create_time, and one column per final
        metric (``metric.<name>``)."""
        import pandas as pd
        rows = []
        for m in self.list_models(dataset):
            spec = m.get("spec") or {}
            row = {"id": m["id"], "dataset": m["dataset"], "state": m["state"],
                   "loss": spec.get("loss"), "propensity": spec.get("propensity"),
                   "error_code": m.get("error_code", ""), "error": m.get("error", ""),
                   "create_time": pd.to_datetime(m.get("create_time_unix_ms", 0), unit="ms")}
            for k, v in (m.get("metrics") or {}).items():
                if isinstance(v, (int, float)):
                    row[f"metric.{k}"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def evaluate_frame(self, model_id: int, dataset: str, **options: Any) -> Any:
        """:meth:`evaluate` as a DataFrame, one row per metric: metric, value,
        low, high (NaN without an interval), mar (the MAR truth when a
        mar_dataset was named, else NaN)."""
        import pandas as pd
        return _metrics_frame(self.evaluate(model_id, dataset, **options), pd)


def _evaluate_request(model_id: "ModelRef", dataset: str,
                      options: Mapping[str, Any]) -> ev_pb2.EvaluateRequest:
    """An EvaluateRequest from evaluate()'s keyword options."""
    req = ev_pb2.EvaluateRequest(dataset=dataset)
    if model_id:
        req.model.CopyFrom(parse_model_ref(model_id))
    for name, value in options.items():
        field = "lambda" if name == "lambda_" else name
        if field not in _EVALUATE_OPTIONS:
            raise TypeError(f"evaluate() got an unknown option {name!r}; known: "
                            f"{', '.join(_EVALUATE_OPTIONS)}")
        if value is None:
            continue
        if field == "k":
            req.k.extend([int(value)] if isinstance(value, (int, np.integer))
                         else [int(v) for v in value])
        elif field == "propensity_params":
            for k, v in value.items():
                req.propensity_params[str(k)] = _param_str(v)
        elif field == "propensity_from":
            req.propensity_from = str(value)
        elif field == "scores":
            for user, item_scores in _scores_mapping(value).items():
                us = req.scores.add(user=str(user))
                for item, sc in item_scores.items():
                    us.items.append(str(item))
                    us.scores.append(float(sc))
        else:
            setattr(req, field, value)
    return req


def _evaluate_result(resp: ev_pb2.EvaluateResponse) -> Dict[str, Any]:
    return {
        "metrics": dict(resp.metrics),
        "intervals": {k: (v.low, v.high) for k, v in resp.intervals.items()},
        "normal_intervals": {k: (v.low, v.high) for k, v in resp.normal_intervals.items()},
        "diagnostics": json_format.MessageToDict(resp.diagnostics),
        "mar_metrics": dict(resp.mar_metrics),
    }


def _scores_mapping(scores: Any) -> Mapping[str, Mapping[str, float]]:
    """{user: {item: score}} from that mapping or a DataFrame (user, item, score)."""
    if hasattr(scores, "columns"):
        missing = {"user", "item", "score"} - set(scores.columns)
        if missing:
            raise ValueError(f"scores DataFrame: missing columns {sorted(missing)}")
        out: Dict[str, Dict[str, float]] = {}
        for user, item, sc in zip(scores["user"], scores["item"], scores["score"]):
            out.setdefault(str(user), {})[str(item)] = float(sc)
        return out
    return scores


def _policy_frame(result: Dict[str, Any], estimators: List[str], pd: Any) -> Any:
    nan = float("nan")
    rows = []
    for name in estimators:
        key = "policy_value" if len(estimators) == 1 else f"policy_value/{name}"
        low, high = result["intervals"].get(key, (nan, nan))
        nlow, nhigh = result["normal_intervals"].get(key, (nan, nan))
        rows.append({"estimator": name, "value": result["metrics"].get(key, nan),
                     "low": low, "high": high, "normal_low": nlow, "normal_high": nhigh})
    frame = pd.DataFrame(rows)
    frame.attrs["diagnostics"] = result["diagnostics"]
    return frame


def _metrics_frame(result: Dict[str, Any], pd: Any) -> Any:
    nan = float("nan")
    rows = []
    for name, value in sorted(result["metrics"].items()):
        low, high = result["intervals"].get(name, (nan, nan))
        rows.append({"metric": name, "value": value, "low": low, "high": high,
                     "mar": result["mar_metrics"].get(name, nan)})
    frame = pd.DataFrame(rows, columns=["metric", "value", "low", "high", "mar"])
    frame.attrs["diagnostics"] = result["diagnostics"]
    return frame


class TrainingJob:
    """A training job that runs in the server without a waiting caller, as
    returned by ``Client.train(..., detach=True)``.

    Attributes:
        id: the model id (see Client.get_model()).

    The job does not depend on this object: it goes on when the object is
    dropped or the process exits; stop it with :meth:`cancel`.
    """

    def __init__(self, client: Client, model_id: int, *,
                 on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                 check: bool = True) -> None:
        self.id = model_id
        self._client = client
        self._on_progress = on_progress
        self._check = check
        self._reported = 0  # epochs already passed to on_progress

    def __repr__(self) -> str:
        return f"TrainingJob(id={self.id}, target={self._client.target!r})"

    def model(self) -> Dict[str, Any]:
        """The model record now (see Client.get_model())."""
        return self._client.get_model(self.id)

    def state(self) -> str:
        """The model's state now: training, ready, failed or cancelled."""
        return str(self.model()["state"])

    def done(self) -> bool:
        """Whether the job has ended (in any state)."""
        return self.state() != "training"

    def progress(self) -> Optional[Dict[str, Any]]:
        """The latest epoch's progress (epoch, total_epochs, loss,
        elapsed_seconds, metrics), or None before the first epoch ends."""
        curve = self.model()["progress"]
        return curve[-1] if curve else None

    def wait(self, timeout: Optional[float] = None, *, poll_interval: float = 0.05,
             check: Optional[bool] = None) -> Dict[str, Any]:
        """Waits for the job to end and returns the final model record,
        passing each new epoch to the ``on_progress`` given to train().

        Args:
            timeout: seconds to wait; None: as long as it takes.
            poll_interval: first delay between polls (GetModel); it grows to
                at most 1 s while the job runs.
            check: raise TrainingError when the job ends "failed" or
                "cancelled"; None: as train() was told.

        Raises:
            DebiasError: DEADLINE_EXCEEDED when ``timeout`` passes first (the
                job goes on), or the failed GetModel call's error.
            TrainingError: the job failed or was cancelled (with check).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll_interval
        while True:
            model = self.model()
            self._report(model)
            if model["state"] != "training":
                break
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    last = model["progress"][-1] if model["progress"] else None
                    where = (f"epoch {last['epoch']} of {last['total_epochs']}" if last
                             else "no epoch finished")
                    raise DebiasError("DEADLINE_EXCEEDED",
                                      f"model {self.id} still training after {timeout} s "
                                      f"({where}); the job goes on")
                delay = min(delay, left)
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        if (self._check if check is None else check) and model["state"] != "ready":
            raise TrainingError(_job_error_code(model), f"model {self.id} ended {model['state']}: "
                                f"{model.get('error', '')}", model=model)
        return model

    def cancel(self, wait: bool = True) -> Dict[str, Any]:
        """Asks the job to stop; with ``wait`` waits until it has and returns
        the final record (state "cancelled", or "ready"/"failed" when it ended
        first: no error then). Without ``wait`` returns the record at once."""
        try:
            model = self._client.cancel_training(self.id)
        except DebiasError as e:
            if e.code != "FAILED_PRECONDITION":  # not training any more: fine
                raise
            model = self.model()
        if wait and model["state"] == "training":
            model = self.wait(check=False)
        return model

    def _report(self, model: Mapping[str, Any]) -> None:
        if self._on_progress is None:
            return
        for p in model["progress"][self._reported:]:
            self._on_progress(p)
        self._reported = max(self._reported, len(model["progress"]))


# --- conversions ---------------------------------------------------------


def attach_stubs(client: Any, channel: Any, token: str) -> None:
    """Sets the service stubs and the auth metadata of Client/AsyncClient."""
    client._metadata = (("authorization", f"Bearer {token}"),) if token else ()
    client._health = health_pb2_grpc.HealthStub(channel)
    client._datasets = ds_grpc.DatasetServiceStub(channel)
    client._models = ms_grpc.ModelServiceStub(channel)
    client._scoring = sc_grpc.ScoringServiceStub(channel)
    client._evaluation = ev_grpc.EvaluationServiceStub(channel)
    client._admin = ad_grpc.AdminServiceStub(channel)


def connection_settings(target: Optional[str], token: Optional[str],
                        credentials: Optional[grpc.ChannelCredentials], tls_ca: Optional[str],
                        tls_cert: Optional[str], tls_key: Optional[str],
                        tls_server_name: Optional[str], lb_policy: str = "",
                        retry_unavailable: bool = True) -> Tuple[str, str, Any, List[Any]]:
    """(target, token, credentials, channel options) from the arguments and
    the DEBIAS_* variables, as debiasctl reads them (Client and AsyncClient)."""
    if target is None:
        target = os.environ.get("DEBIAS_SERVER") or DEFAULT_TARGET
    if token is None:
        token = os.environ.get("DEBIAS_TOKEN", "")
    # The server enforces --max_message_bytes; the client does not add a
    # second, smaller limit.
    options: List[Any] = [("grpc.max_receive_message_length", -1),
                          ("grpc.max_send_message_length", -1),
                          ("grpc.service_config", service_config(lb_policy, retry_unavailable))]
    if lb_policy:
        options.append(("grpc.lb_policy_name", lb_policy))
    if credentials is None:
        credentials, server_name = _tls_credentials(tls_ca, tls_cert, tls_key, tls_server_name)
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
    return target, token, credentials, options


def ingest_requests(dataset: str, rows: Iterator[Dict[str, Any]], create_if_missing: bool,
                    batch_size: int, on_row: Optional[Callable[[Dict[str, Any]], None]] = None
                    ) -> Iterator[ds_pb2.IngestRequest]:
    """The IngestRequest messages of an ingest of ``rows`` (from
    _event_kwargs), batch by batch; raises BadRow (a ValueError naming the
    row) for an event that cannot be sent. An empty input still yields the
    first message (it names the dataset). ``on_row`` sees each added row."""
    first = True
    while True:
        req = ds_pb2.IngestRequest()
        if first:
            req.dataset = dataset
            req.create_if_missing = create_if_missing
        n = 0
        for row in rows:
            req.events.add(**row)
            if on_row is not None:
                on_row(row)
            n += 1
            if n == batch_size:
                break
        if n == 0 and not first:
            return
        first = False
        yield req
        if n < batch_size:
            return


def _tls_credentials(ca: Optional[str], cert: Optional[str], key: Optional[str],
                     server_name: Optional[str]
                     ) -> Tuple[Optional[grpc.ChannelCredentials], str]:
    """TLS channel credentials from PEM files (arguments, else DEBIAS_TLS_*),
    as debiasctl builds them: TLS when a CA or a client certificate is given;
    (None, "") for plaintext."""
    def setting(value: Optional[str], env: str) -> str:
        return os.environ.get(env, "") if value is None else value

    ca = setting(ca, "DEBIAS_TLS_CA")
    cert = setting(cert, "DEBIAS_TLS_CERT")
    key = setting(key, "DEBIAS_TLS_KEY")
    server_name = setting(server_name, "DEBIAS_TLS_SERVER_NAME")
    if not ca and not cert:
        if key:
            raise DebiasError("INVALID_ARGUMENT", "tls_key without tls_cert")
        return None, ""
    if bool(cert) != bool(key):
        raise DebiasError("INVALID_ARGUMENT", "tls_cert and tls_key go together")

    def read(name: str, path: str) -> Optional[bytes]:
        if not path:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise DebiasError("INVALID_ARGUMENT",
                              f"{name}={path!r}: cannot read: {e.strerror}") from None

    creds = grpc.ssl_channel_credentials(root_certificates=read("tls_ca", ca),
                                         private_key=read("tls_key", key),
                                         certificate_chain=read("tls_cert", cert))
    return creds, server_name


def message_to_dict(msg: Message) -> Dict[str, Any]:
    """Converts a protobuf message to a dict of plain Python values.

    Unlike json_format.MessageToDict it keeps 64-bit integers as ints, keeps
    the proto field names, includes fields at their default values, and maps
    an unset ``optional`` field to None. google.protobuf.Struct becomes a dict.
    """
    out: Dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _field_value(value_field, v) for k, v in value.items()}
        elif field.label == _descriptor.FieldDescriptor.LABEL_REPEATED:
            out[field.name] = [_field_value(field, v) for v in value]
        elif (field.type != _descriptor.FieldDescriptor.TYPE_MESSAGE and field.has_presence
              and not msg.HasField(field.name)):
            out[field.name] = None
        else:
            out[field.name] = _field_value(field, value)
    return out


def _is_map(field: _descriptor.FieldDescriptor) -> bool:
    return (field.type == _descriptor.FieldDescriptor.TYPE_MESSAGE
            and field.message_type.GetOptions().map_entry)


def _field_value(field: _descriptor.FieldDescriptor, value: Any) -> Any:
    if field.type == _descriptor.FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name in ("google.protobuf.Struct",
                                            "google.protobuf.ListValue",
                                            "google.protobuf.Value"):
            return json_format.MessageToDict(value)
        return message_to_dict(value)
    if field.type == _descriptor.FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    return value


def _param_str(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def _add_candidates(field: Any, candidates: Optional[Candidates]) -> None:
    for item, features in candidates or ():
        field.add(item=str(item), features=[float(x) for x in features])


def _is_na(value: Any) -> bool:
    """pd.NA or pd.NaT (a missing value; NaN is a float, not missing)."""
    pd = sys.modules.get("pandas")
    return pd is not None and (value is pd.NA or value is pd.NaT)


def _finite(value: float, name: str, index: int) -> float:
    if not math.isfinite(value):
        raise BadRow(f"row {index}: {name}={_float_text(value)}: must be a finite number")
    return value


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    pd = sys.modules.get("pandas")
    return pd is not None and (value is pd.NA or value is pd.NaT)


def _event_kwargs(events: Any) -> Iterator[Dict[str, Any]]:
    """Yields the Interaction constructor arguments of every event, lazily.

    DataFrame columns are checked before the first event is produced.
    """
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(events, pd.DataFrame):
        return _dataframe_kwargs(events)
    if isinstance(events, (str, bytes, Mapping)):
        raise TypeError("events must be a DataFrame or an iterable of dicts/tuples, "
                        f"not {type(events).__name__}")
    return (_row_kwargs(_event_mapping(e), j) for j, e in enumerate(events))


def _dataframe_kwargs(frame: Any) -> Iterator[Dict[str, Any]]:
    unknown = [c for c in frame.columns if c not in _ALL_EVENT_FIELDS]
    if unknown:
        raise ValueError(f"DataFrame columns {unknown}: unknown; allowed: "
                         f"{', '.join(_ALL_EVENT_FIELDS)}")
    for required in ("user", "item"):
        if required not in frame.columns:
            raise ValueError(f"DataFrame column {required!r}: required")
    checked = {name: _finite_column(frame[name], name, missing_ok=(name != "label"))
               for name in ("label", "propensity") if name in frame.columns}
    return _dataframe_chunks(frame, checked)


class BadRow(ValueError):
    """An event that cannot be sent as given; the message names its row."""


def _finite_column(col: Any, name: str, missing_ok: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(float64 values, missing mask) of a label/propensity column.

    Missing means None or pd.NA (left unset when ``missing_ok``); NaN and
    +-inf are values, and not finite ones: both raise BadRow naming the first
    bad row (its 0-based position in the frame).
    """
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiub":  # NaN is a value here
        values = col.to_numpy(dtype=np.float64)
        missing = np.zeros(len(values), dtype=bool)
    else:  # object or a pandas extension dtype (Float64, Int64, ...)
        objects = col.to_numpy(dtype=object)
        missing = col.isna().to_numpy().copy()
        for j in np.flatnonzero(missing):
            v = objects[j]
            if isinstance(v, (float, np.floating)) and v != v:  # a real NaN
                missing[j] = False
        try:
            values = np.array([np.nan if m else float(v) for v, m in zip(objects, missing)],
                              dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"DataFrame column {name!r}: {e}") from None
    if missing.any() and not missing_ok:
        j = int(np.argmax(missing))
        raise BadRow(f"row {j}: {name} is missing (leave out the {name} column for a click)")
    bad = ~np.isfinite(values) & ~missing
    if bad.any():
        j = int(np.argmax(bad))
        raise BadRow(f"row {j}: {name}={_float_text(values[j])}: must be a finite number")
    return values, missing


def _float_text(v: float) -> str:
    return "nan" if v != v else ("inf" if v > 0 else "-inf")


_INT_COLUMNS = ("timestamp", "position")
_FLOAT_COLUMNS = ("propensity",)
_STR_COLUMNS = ("list_id", "event_id")


def _dataframe_chunks(frame: Any, checked: Mapping[str, Tuple[np.ndarray, np.ndarray]],
                      chunk: int = 65536) -> Iterator[Dict[str, Any]]:
    # Columns are converted a chunk at a time with numpy/pandas, so the
    # per-event Python work is one dict: about 4x faster than row by row.
    for start in range(0, len(frame), chunk):
        part = frame.iloc[start:start + chunk]
        dense: Dict[str, List[Any]] = {}
        sparse: Dict[str, List[Any]] = {}  # None where the value is missing
        for name in ("user", "item"):
            col = part[name]
            missing = col.isna().to_numpy()
            if missing.any():
                raise BadRow(f"row {start + int(np.argmax(missing))}: {name} is missing")
            dense[name] = col.astype(str).tolist()
        if "label" in checked:  # finite, none missing (checked up front)
            dense["label"] = checked["label"][0][start:start + chunk].tolist()
        else:
            dense["label"] = [1.0] * len(part)
        for name in _INT_COLUMNS + _FLOAT_COLUMNS + _STR_COLUMNS + ("features",):
            if name not in part.columns:
                continue
            col = part[name]
            if name in checked:
                missing = checked[name][1][start:start + chunk]
            else:
                missing = col.isna().to_numpy()
            if name in _INT_COLUMNS:
                if not missing.any():
                    converted: List[Any] = col.to_numpy(dtype=np.int64).tolist()
                else:
                    floats = col.to_numpy(dtype=np.float64, na_value=np.nan).tolist()
                    converted = [None if m else int(v) for v, m in zip(floats, missing)]
            elif name in _FLOAT_COLUMNS:
                converted = checked[name][0][start:start + chunk].tolist()
            elif name in _STR_COLUMNS:
                converted = col.astype(str).tolist()
            else:
                converted = [None if m else [float(x) for x in v]
                             for v, m in zip(col.tolist(), missing)]
            if missing.any():
                sparse[name] = [None if m else v for v, m in zip(converted, missing)]
            else:
                dense[name] = converted
        names = list(dense)
        if not sparse:
            for values in zip(*dense.values()):
                yield dict(zip(names, values))
        else:
            for j, values in enumerate(zip(*dense.values())):
                kw = dict(zip(names, values))
                for name, column in sparse.items():
                    if column[j] is not None:
                        kw[name] = column[j]
                yield kw


def _event_mapping(event: Event) -> Mapping[str, Any]:
    if isinstance(event, Mapping):
        unknown = [k for k in event if k not in _ALL_EVENT_FIELDS]
        if unknown:
            raise ValueError(f"keys {unknown}: unknown; allowed: {', '.join(_ALL_EVENT_FIELDS)}")
        return event
    if isinstance(event, (tuple, list)):
        if not 2 <= len(event) <= len(EVENT_FIELDS):
            raise ValueError(f"tuple of {len(event)} fields: expected 2 to "
                             f"{len(EVENT_FIELDS)} ({', '.join(EVENT_FIELDS)})")
        return dict(zip(EVENT_FIELDS, event))
    raise TypeError(f"event of type {type(event).__name__}: expected a dict or a tuple")


def _row_kwargs(row: Mapping[str, Any], index: int) -> Dict[str, Any]:
    """The Interaction constructor arguments of one dict event, the
    ``index``-th (0-based) of the caller's iterable."""
    user = row.get("user")
    item = row.get("item")
    if _is_missing(user) or _is_missing(item):
        raise ValueError("user and item are required")
    kw: Dict[str, Any] = {"user": str(user), "item": str(item), "label": 1.0}
    if "label" in row:
        label = row["label"]
        if label is None or _is_na(label):
            raise BadRow(f"row {index}: label is missing (leave out the label for a click)")
        kw["label"] = _finite(float(label), "label", index)
    for name, convert in _OPTIONAL_CONVERTERS:
        v = row.get(name)
        if name == "propensity":
            if v is not None and not _is_na(v):
                kw[name] = _finite(float(v), name, index)
        elif not _is_missing(v):
            kw[name] = convert(v)
    v = row.get("features")
    if v is not None and not (isinstance(v, float) and math.isnan(v)):
        kw["features"] = [float(x) for x in v]
    return kw


_OPTIONAL_CONVERTERS: Tuple[Tuple[str, Callable[[Any], Any]], ...] = (
    ("timestamp", int), ("list_id", str), ("position", int), ("propensity", float),
    ("event_id", str))
