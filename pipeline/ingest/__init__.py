"""Reading annotation exports (Roboflow) into normalised frames, masks and a manifest."""
