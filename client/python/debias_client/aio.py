"""An asyncio client (grpc.aio) with the calls a pipeline makes in an event
loop: the same methods, arguments and results as :class:`debias_client.Client`,
as coroutines.

    async with AsyncClient() as c:           # $DEBIAS_SERVER, $DEBIAS_TOKEN
        await c.ingest("clicks", frame)
        model = await c.train("clicks", "auto")
        scores = await asyncio.gather(*(c.score(model["id"], u, items) for u in users))

Connection settings are read like Client's (target, token and TLS from the
arguments or the DEBIAS_* variables). Failed calls raise DebiasError (and
IngestError / TrainingError) with the gRPC status code name.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
import grpc.aio
import numpy as np

from debias_client import client as _sync
from debias_client._proto.debias.v1 import dataset_service_pb2 as ds_pb2
from debias_client._proto.debias.v1 import model_service_pb2 as ms_pb2
from debias_client._proto.debias.v1 import scoring_service_pb2 as sc_pb2
from debias_client._proto.grpc.health.v1 import health_pb2
from debias_client.errors import DebiasError, IngestError, TrainingError


class AsyncClient:
    """Coroutine counterpart of :class:`debias_client.Client` over one
    grpc.aio channel; use it from one event loop (``async with`` closes it)."""

    def __init__(self, target: Optional[str] = None, timeout: float = 30.0, *,
                 token: Optional[str] = None,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None,
                 tls_server_name: Optional[str] = None,
                 lb_policy: str = "", retry_unavailable: bool = True) -> None:
        target, token, credentials, options = _sync.connection_settings(
            target, token, credentials, tls_ca, tls_cert, tls_key, tls_server_name,
            lb_policy, retry_unavailable)
        self.target = target
        self.timeout = timeout
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        _sync.attach_stubs(self, self._channel, token)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as e:
            raise DebiasError.from_rpc_error(e) from None

    # --- the calls ---------------------------------------------------------

    async def health(self, service: str = "") -> str:
        """"SERVING" or "NOT_SERVING" (see Client.health)."""
        resp = await self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    async def list_datasets(self) -> List[Dict[str, Any]]:
        resp = await self._call(self._datasets.ListDatasets, ds_pb2.ListDatasetsRequest())
        return [_sync.message_to_dict(d) for d in resp.datasets]

    async def stats(self, name: str) -> Dict[str, Any]:
        return _sync.message_to_dict(
            await self._call(self._datasets.GetStats, ds_pb2.GetStatsRequest(name=name)))

    async def ingest(self, dataset: str, events: Union[Iterable[_sync.Event], Any], *,
                     create_if_missing: bool = True, batch_size: int = 8192,
                     timeout: Optional[float] = None) -> _sync.IngestResult:
        """Streams events into ``dataset`` (see Client.ingest: same event
        forms, the same checks before anything is sent, the same result)."""
        if not 1 <= batch_size <= 100000:
            raise ValueError(f"batch_size={batch_size}: must be in [1, 100000]")
        try:
            rows = _sync._event_kwargs(events)
        except _sync.BadRow as e:
            raise IngestError("INVALID_ARGUMENT", str(e)) from None
        requests = _sync.ingest_requests(dataset, rows, create_if_missing, batch_size)
        call = self._datasets.Ingest(timeout=timeout, metadata=self._metadata)
        acked = stored = duplicate = version = sent = 0
        try:
            for req in requests:
                await call.write(req)
                sent += len(req.events)
            await call.done_writing()
            async for resp in call:
                acked, stored = int(resp.events_acknowledged), int(resp.events_stored)
                duplicate, version = int(resp.events_duplicate), int(resp.data_version)
        except grpc.aio.AioRpcError as e:
            raise IngestError.from_rpc_error(e, events_acknowledged=acked,
                                             data_version=version) from None
        except _sync.BadRow as e:
            call.cancel()
            raise IngestError("INVALID_ARGUMENT", str(e), events_acknowledged=acked,
                              data_version=version) from None
        if acked != sent:
            raise IngestError("DATA_LOSS", f"server acknowledged {acked} of {sent} events",
                              events_acknowledged=acked, data_version=version)
        return _sync.IngestResult(acked, events_stored=stored, events_duplicate=duplicate,
                                  data_version=version)

    async def train(self, dataset: str, loss: str, params: Optional[Mapping[str, Any]] = None,
                    seed: int = 0, *, feedback: str = "", propensity: str = "",
                    mar_dataset: str = "", timeout: Optional[float] = None,
                    check: bool = True) -> Dict[str, Any]:
        """Trains a model and returns its final record (see Client.train);
        TrainingError (with the model's error_code) when it does not end
        ready and ``check``."""
        req = ms_pb2.TrainRequest(dataset=dataset, loss=loss, feedback=feedback,
                                  propensity=propensity, seed=seed, mar_dataset=mar_dataset)
        for k, v in (params or {}).items():
            req.params[str(k)] = _sync._param_str(v)
        final: Optional[Dict[str, Any]] = None
        try:
            async for ev in self._models.Train(req, timeout=timeout, metadata=self._metadata):
                if ev.WhichOneof("event") == "finished":
                    final = _sync.message_to_dict(ev.finished)
        except grpc.aio.AioRpcError as e:
            raise DebiasError.from_rpc_error(e) from None
        if final is None:
            raise DebiasError("UNAVAILABLE", "training stream ended without a model")
        if check and final.get("state") != "ready":
            raise TrainingError(_sync._job_error_code(final),
                                f"model {final.get('id')} ended {final.get('state')}: "
                                f"{final.get('error', '')}", model=final)
        return final

    async def get_model(self, model_id: _sync.ModelRef) -> Dict[str, Any]:
        return _sync.message_to_dict(
            await self._call(self._models.GetModel, ms_pb2.GetModelRequest(model=_sync.parse_model_ref(model_id))))

    async def list_models(self, dataset: str = "") -> List[Dict[str, Any]]:
        resp = await self._call(self._models.ListModels, ms_pb2.ListModelsRequest(dataset=dataset))
        return [_sync.message_to_dict(m) for m in resp.models]

    async def score(self, model_id: _sync.ModelRef, user: str, items: Sequence[str]) -> np.ndarray:
        req = sc_pb2.ScoreRequest(model=_sync.parse_model_ref(model_id), user=user, items=[str(i) for i in items])
        resp = await self._call(self._scoring.Score, req)
        return np.asarray(resp.scores, dtype=np.float32)

    async def topk(self, model_id: _sync.ModelRef, user: str, k: int,
                   exclude_seen: bool = False) -> Tuple[List[str], np.ndarray]:
        req = sc_pb2.TopKRequest(model=_sync.parse_model_ref(model_id), user=user, k=k, exclude_seen=exclude_seen)
        resp = await self._call(self._scoring.TopK, req)
        return list(resp.items), np.asarray(resp.scores, dtype=np.float32)

    async def batch_score(self, model_id: _sync.ModelRef,
                          requests: Mapping[str, Sequence[str]]) -> Dict[str, np.ndarray]:
        req = sc_pb2.BatchScoreRequest(model=_sync.parse_model_ref(model_id))
        users = list(requests.keys())
        for u in users:
            req.requests.add(user=u, items=[str(i) for i in requests[u]])
        resp = await self._call(self._scoring.BatchScore, req)
        return {u: np.asarray(r.scores, dtype=np.float32) for u, r in zip(users, resp.responses)}

    async def evaluate(self, model_id: _sync.ModelRef, dataset: str, **options: Any) -> Dict[str, Any]:
        """See Client.evaluate (same options, same result)."""
        req = _sync._evaluate_request(model_id, dataset, options)
        return _sync._evaluate_result(await self._call(self._evaluation.Evaluate, req))

    async def evaluate_policy(self, dataset: str,
                              estimators: Sequence[str] = ("ipw", "snips", "dr"), *,
                              model_id: _sync.ModelRef = 0, scores: Any = None, **options: Any) -> Any:
        """See Client.evaluate_policy: one DataFrame row per estimator."""
        import pandas as pd
        opts = dict(options)
        opts["policy_estimator"] = ",".join(estimators)
        if scores is not None:
            opts["scores"] = _sync._scores_mapping(scores)
        result = await self.evaluate(model_id, dataset, **opts)
        return _sync._policy_frame(result, list(estimators), pd)
