"""Demo: the bundled real galaxies, the GZ2 Stripe 82 votes, simulated volunteers, consensus and demo users, loaded in
one call for `make demo`."""
