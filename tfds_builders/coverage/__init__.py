"""COVERAGE copy-move builder."""
