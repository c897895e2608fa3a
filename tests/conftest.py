"""Settings for the whole suite, and the contract suite's switches."""

import os

# A developer's running `linecap up` leaves .linecap/local.env; CLI tests must not pick it up.
os.environ["LINECAP_LOCAL_ENV_FILE"] = os.devnull + ".linecap-tests"


def pytest_addoption(parser):
    group = parser.getgroup("contract", "the contract suite (tests/contract)")
    group.addoption("--capillary-live", action="store_true",
                    help="run the Capillary contract against CAPILLARY_BASE_URL and its "
                         "credentials instead of the sandbox")
    group.addoption("--line-live", action="store_true",
                    help="run the LINE contract against LINE_API_BASE_URL (default "
                         "https://api.line.me) with LINECAP_CONTRACT_LINE_TOKEN")
    group.addoption("--contract-writes", action="store_true",
                    help="allow live contract tests that create test customers (externalId "
                         "prefix linecap-contract-) or use LINE's webhook test quota")
