"""``python -m cgcnn_sk.cli``: the ``cgcnn-sk`` command."""

import sys

from ._main import main

sys.exit(main())
