"""Dataset converters: build `$isrnet_raw/DatasetXXX_Name/` folders from packaged or user data.

Packaged real data (no network beyond package registries): `demo_brain`, `itk_t1`, `packaged_video`,
`hr_mr`. Data users bring: `generic_folder`, `ixi`, `video_frames`. Command line: `isr_convert`.
"""
