"""DEFACTO builder."""
