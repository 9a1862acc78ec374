"""Workflows built from the estimators: the studies and the Matbench protocol.

* :mod:`cgcnn_sk.workflows.studies` -- cross-validated studies of the model's settings and the
  random-forest baseline, written as tidy tables and a report.
* :mod:`cgcnn_sk.workflows.matbench` -- the official Matbench v0.1 folds, member by member,
  resumable.
"""

from ._interrupt import RunInterrupted

__all__ = ["RunInterrupted"]
