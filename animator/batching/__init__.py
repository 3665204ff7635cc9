"""Batches, sweeps and sections on Ray: many renders as one queue, from one laptop to a GPU cluster.

The entry points are ``animator.batch(...)`` and ``animator.sweep(...)`` (:mod:`animator.batching.api`), and the
``animator batch`` / ``animator sweep`` commands. The package is not called ``batch``: importing a subpackage binds
its name on the parent package, which would hide the function ``animator.batch``.

Modules: ``jobs`` (job specs, ``--set`` values, the cross product), ``runner`` (one job in one process: skip,
resume or start), ``queue`` (Ray: worker actors, progress, Ctrl-C), ``progress`` (the bars), ``summary``
(summary.csv), ``contact`` (the contact sheet), ``sections`` (sections as jobs, and their join), ``api``.
"""

from animator.batching.api import batch, run_jobs, sweep

__all__ = ["batch", "sweep", "run_jobs"]
