"""HLED released synthetic sets builder."""
