"""The `textgen` sub-commands, one module per group, and what every group shares.

`textgen.cli` builds the parser from the groups (`add_*_commands`) and runs the chosen one. Each
group parses its flags and calls one function of a room; no ML logic lives here, and each imports
its room inside the function that runs, so `textgen --help` loads no more than it needs.
"""

from __future__ import annotations

import json

from textgen.errors import TextgenError

class UserError(TextgenError):
    """A bad combination of flags found by the CLI itself."""


def print_json(obj) -> None:
    print(json.dumps(obj, indent=None, sort_keys=False, default=str))
