"""Sharing trained models: provenance records, `isr_export_model` archives, `isr_install_model`, shipped weights."""
