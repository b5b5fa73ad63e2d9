"""`python -m evse_agent.csms`: the same as `evse-agent csms`."""

import sys

from .cli import main

sys.exit(main())
