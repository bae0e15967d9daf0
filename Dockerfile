# GPU image for benchmark_rc:  docker build -t benchmark-rc .
#   docker run --gpus all -v "$PWD/runs:/home/rc/runs" benchmark-rc sweep --preset paper-sim --out runs/paper-sim
# The official TensorFlow GPU image carries CUDA/cuDNN for the pinned TensorFlow version.
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /opt/benchmark_rc

# Dependencies first, so code edits do not invalidate this layer. tensorflow is already in the image
# and satisfies requirements.txt. requirements-ray.txt: Ray, for `--backend ray` on a cluster
# (docs/scale.md), e.g. docker run --gpus all --network host -v /shared/runs:/home/rc/runs
#   benchmark-rc sweep --preset paper-sim --out runs/paper-sim --backend ray --address HEAD:6379
COPY requirements.txt requirements-ray.txt ./
RUN python -m pip install --no-cache-dir -r requirements.txt -r requirements-ray.txt

COPY pyproject.toml README.md benchmark_rc_launcher.py ./
COPY benchmark_rc ./benchmark_rc
COPY data_prep ./data_prep
RUN python -m pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 1000 --user-group rc

USER 1000:1000
WORKDIR /home/rc
ENTRYPOINT ["benchmark-rc"]
CMD ["--help"]
