"""Linking a LINE user to an existing customer: the accountLink event and the link task."""
