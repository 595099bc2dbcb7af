"""``python -m tests.focus_validator`` installs the FOCUS validator's venv."""

import sys

from tests.focus_validator import main

sys.exit(main())
