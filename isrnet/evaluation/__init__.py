"""Metrics (PSNR, SSIM on a foreground mask, matched by physical position), isr_evaluate, isr_benchmark."""
