"""The same map and merge as engine/parallel.py on a Dask cluster.

Parts travel as (path, byte range) descriptions, not bytes: the workers
must see the files at the same paths (shared or replicated storage).
Dask is an optional extra, imported here only: ``pip install
'ipv6flow[dask]'``. Without ``options.scheduler`` a LocalCluster is
started for the run (``options.workers`` processes, one thread each).
"""

import dataclasses

from ..errors import Ipv6flowError
from ..options import MIN_PART_BYTES, Options, RunResult
from .parallel import analyze_parallel, default_workers


def analyze_dask(paths, options: Options, min_part: int = MIN_PART_BYTES) -> RunResult:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise Ipv6flowError("--engine dask needs Dask: pip install 'ipv6flow[dask]'") from None
    if "-" in paths:
        raise Ipv6flowError("--engine dask cannot read stdin: the workers need files")
    cluster = None
    if options.scheduler is None:
        cluster = LocalCluster(n_workers=options.workers or default_workers(),
                               threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(options.scheduler)
    try:
        ncores = sum(client.ncores().values()) or 1

        def engine_map(fn, items):
            if not items:
                return []
            futures = client.map(fn, items, pure=False)
            return client.gather(futures)

        if options.workers is None:
            options = dataclasses.replace(options, workers=ncores)
        return analyze_parallel(paths, options, min_part=min_part, engine_map=engine_map)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
