"""Prediction: the network over whole volumes with exact output geometry."""
