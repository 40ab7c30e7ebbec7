"""Preprocessing: move the slice axis first, crop, normalise, save (invertible, recorded)."""
