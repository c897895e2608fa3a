"""Settings for the whole suite."""

import os

# A developer's running `linecap up` leaves .linecap/local.env; CLI tests must not pick it up.
os.environ["LINECAP_LOCAL_ENV_FILE"] = os.devnull + ".linecap-tests"
