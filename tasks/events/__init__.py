"""LINE webhook events: follow and unfollow applied to Capillary, multi-event requests split."""
