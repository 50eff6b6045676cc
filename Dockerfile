# GPU image running the same commands as the README (cuML KNN, CUDA torch).
# Not built in CI (no Docker engine on the CI machines).
FROM pytorch/pytorch:2.9.1-cuda13.0-cudnn9-runtime
WORKDIR /opt/prodmatch
COPY setup.py setup.cfg README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[gpu,dev]"
COPY tests ./tests
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ENTRYPOINT ["prodmatch"]
CMD ["demo"]
