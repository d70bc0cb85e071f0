"""The same map and merge as engine/parallel.py on a Dask cluster.

Parts travel as (path, byte range) descriptions, not bytes: the workers
must see the files at the same paths (shared or replicated storage).
Dask is an optional extra, imported here only: ``pip install
'ipv6flow[dask]'``. Without ``--scheduler`` a LocalCluster is started
for the run (processes, one thread each).
"""

from ..errors import Ipv6flowError
from .parallel import analyze_parallel, default_workers


def analyze_dask(paths, opts, interval, decoder="fast", stats=None, nat64_prefixes=(),
                 services=None, scheduler=None, workers=None, min_part=32 << 20):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise Ipv6flowError("--engine dask needs Dask: pip install 'ipv6flow[dask]'") from None
    if "-" in paths:
        raise Ipv6flowError("--engine dask cannot read stdin: the workers need files")
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        ncores = sum(client.ncores().values()) or 1

        def engine_map(fn, items):
            if not items:
                return []
            futures = client.map(fn, items, pure=False)
            return client.gather(futures)

        return analyze_parallel(paths, opts, interval, decoder, stats, nat64_prefixes, services,
                                workers or ncores, min_part, engine_map)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
