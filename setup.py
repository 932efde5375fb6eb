"""Installs the `token_dropping` package: token dropping for BERT pretraining.

Stack pinned to versions that install together on Python 3.11.
"""
import setuptools

setuptools.setup(
    name="token-dropping",
    version="0.1.0",
    description=(
        "Token Dropping for Efficient BERT Pretraining (Hou et al., ACL 2022) "
        "on the TensorFlow Model Garden."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["token_dropping", "token_dropping.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=[
        "tensorflow~=2.20.0",
        "tf-models-official==2.20.0",
        "tensorflow-text~=2.20.0",
        "tf-keras~=2.20.0",
        "tensorflow-datasets",
        "absl-py",
        "gin-config",
        "safetensors",  # the export's Hugging Face folder (numpy API)
        "scipy",  # the study's t intervals and bag-of-words fit
    ],
    extras_require={
        # KerasHub loads the Hugging Face folder on Keras 3 (TF backend); the
        # tests use it as the independent loader of that folder.
        "hf": ["keras-hub"],
        # tools/prepare_data.py --runner: the build's per-file work as an
        # Apache Beam pipeline (DirectRunner, Dataflow, Flink, Spark).
        "beam": ["apache-beam"],
        # scikit-learn: the bag-of-words row's independent reference.
        "test": ["pytest", "keras-hub", "scikit-learn"],
    },
)
