"""Tests of the Labs, one module per Lab (a package, so that module names do not clash with tests/)."""
