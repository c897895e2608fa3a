"""The Capillary (InTouch) v2 client: authentication, one call within the shared budget, the
calls linecap makes, and reading the customer documents they return."""
