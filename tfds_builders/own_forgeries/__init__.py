"""Bring-your-own-dataset builder: Tp/Gt/Au folders or an IMDL-BenCo JSON list."""
