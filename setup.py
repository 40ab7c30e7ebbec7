"""Installation of isrnet: `pip install -e .` (install torch first, see README)."""
from setuptools import find_packages, setup

setup(
    name="isrnet",
    version="0.1.0",
    description="Self-configuring inter-slice super-resolution for MR images (video pre-training, "
                "MR fine-tuning, self-supervised fine-tuning)",
    python_requires=">=3.11",
    packages=find_packages(include=["isrnet", "isrnet.*", "dataset_conversion", "dataset_conversion.*"]),
    package_data={"isrnet": ["pretrained/*.pth", "pretrained/*.json"]},
    install_requires=[
        "torch>=2.1",
        "SimpleITK>=2.3",
        "nibabel>=5.0",
        "batchgenerators>=0.25",
        "acvl-utils>=0.2,<0.3",
        "numpy>=1.24",
        "scipy>=1.10",
        "pandas>=2.0",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "av>=11",
        "pydicom>=3.0",
    ],
    extras_require={"bids": ["pybids>=0.16"],
                    "test": ["pytest>=7", "dcm2niix>=1.0.20220720", "pybids>=0.16", "bids-validator-deno>=2.0"]},
    entry_points={
        "console_scripts": [
            "isr_plan_and_preprocess=isrnet.cli.plan_and_preprocess:main_plan_and_preprocess",
            "isr_extract_fingerprint=isrnet.cli.plan_and_preprocess:main_extract_fingerprint",
            "isr_plan=isrnet.cli.plan_and_preprocess:main_plan",
            "isr_preprocess=isrnet.cli.plan_and_preprocess:main_preprocess",
            "isr_convert=dataset_conversion.cli:main",
            "isr_train=isrnet.cli.train:main",
            "isr_predict=isrnet.cli.predict:main",
            "isr_fuse=isrnet.cli.fuse:main",
            "isr_evaluate=isrnet.cli.evaluate:main",
            "isr_benchmark=isrnet.cli.benchmark:main",
            "isr_export_model=isrnet.cli.model_sharing:main_export",
            "isr_install_model=isrnet.cli.model_sharing:main_install",
            "isr_bids=isrnet.cli.bids:main",
        ],
    },
)
