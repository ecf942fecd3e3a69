"""IMD2020 builder."""
