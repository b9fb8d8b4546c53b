"""Python client of debias, the debiasing service for implicit feedback.

    from debias_client import Client, DebiasError

    with Client("127.0.0.1:50051") as c:
        c.ingest("clicks", frame)                     # pandas DataFrame or dicts/tuples
        model = c.train("clicks", "relmf", {"epochs": "10"}, on_progress=print)
        scores = c.score(model["id"], "u1", ["i1", "i2"])   # numpy float32
        items, top = c.topk(model["id"], "u1", 10)
        report = c.evaluate(model["id"], "clicks", estimator="ips", bootstrap=200)
        table = c.topk_frame(model["id"], users, 10)    # DataFrame: user, rank, item, score
        c.evaluate_policy("bandit-log", ["ipw", "snips"], scores=my_scores)  # one row each

debias_client.aio.AsyncClient is the same client as coroutines (grpc.aio).

The gRPC stubs are generated from proto/ into debias_client._proto, with the
version (the server's, from CMakeLists.txt) into debias_client._version, when
the package is built (pip install ./client/python) or by generate.sh (see
README.md); they are never committed.
"""

from debias_client._version import __version__

from debias_client.client import EVENT_FIELDS, Client, IngestResult, TrainingJob, message_to_dict
from debias_client.errors import DebiasError, IngestError, TrainingError
from debias_client.aio import AsyncClient

__all__ = ["AsyncClient", "Client", "DebiasError", "IngestError", "IngestResult", "TrainingError", "TrainingJob",
           "EVENT_FIELDS", "message_to_dict", "__version__"]
