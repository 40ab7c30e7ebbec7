"""Small helpers used across stages (JSON, parallel maps, atomic files)."""
