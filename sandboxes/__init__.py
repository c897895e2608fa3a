"""Stand-ins for Capillary and the LINE platform: models of their published documents, for
tests and the local stack. No linecap product module imports them."""
