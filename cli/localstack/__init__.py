"""`linecap up`: the whole system on one machine (embedded Redis, sandboxes, web, worker,
Flower), supervised in one terminal."""
