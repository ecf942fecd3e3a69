"""CoMoFoD copy-move builder."""
