"""CASIA v1 / v2 tampered image detection builder."""
