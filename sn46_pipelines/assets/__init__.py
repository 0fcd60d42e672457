"""Dagster assets: each calls one library function and reports what it did."""
