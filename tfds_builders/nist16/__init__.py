"""NIST Nimble Challenge 2016 builder."""
