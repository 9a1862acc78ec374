"""The ``cgcnn-sk`` command: study, matbench, featurize, train, predict.

The command parses its flags, calls the library and prints. It defines no model parameters of
its own: any pipeline parameter is given as ``--<step>__<param>=<value>`` and goes to
``Pipeline.set_params`` (``--cgcnn__module__pooling=max``, ``--graph__max_num_nbr=8``,
``--cgcnn__max_epochs=50``). Values are read as Python literals when they parse
(``8``, ``1e-3``, ``True``, ``None``) and as strings otherwise.

Errors in arguments or data end the command with one line ``cgcnn-sk: error: ...`` on stderr
and a non-zero exit code (2 for bad arguments, 1 for bad data); ``--debug`` shows the traceback.
Ctrl-C ends with exit code 130 and a line on stderr saying what was kept: ``train`` saves the
model trained so far, ``matbench`` keeps its finished members (the same command resumes),
``study`` writes a report of the settings that finished, marked partial.
"""

from ._inputs import CLIError, Data, load_data, parse_set_params
from ._main import build_parser, main

__all__ = ["CLIError", "Data", "build_parser", "load_data", "main", "parse_set_params"]
