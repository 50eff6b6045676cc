# GPU image running the same commands as the README. PyPI's torch 2.14.1 wheel carries its own
# CUDA 13 runtime (nvidia-* wheels), so a slim Python base plus the host's NVIDIA driver
# (docker run --gpus all) is enough; [gpu] adds cuML/cuDF for CUDA 13.
# Not built in CI (no Docker engine on the CI machines).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/prodmatch
COPY setup.py setup.cfg README.md ./
COPY src ./src
COPY tests ./tests
RUN pip install --no-cache-dir -e ".[gpu,dev]"
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ENTRYPOINT ["prodmatch"]
CMD ["demo"]
