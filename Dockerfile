# One image for the bot, the generation worker and the fine-tune worker (compose.yaml runs all three).
#
#   docker build -t lyricbot .                          # the CPU build of PyTorch
#   docker build -t lyricbot --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .   # CUDA
#
# No secret goes into the image: the token and the passwords come from the environment at run time
# (only the paths copied below are in it, never .env).
FROM python:3.11-slim

ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# PyTorch on a layer of its own: the largest download, and the one the package leaves open (torch>=2.10,<3).
RUN pip install --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}"

# The migrations ship inside the package (migrations/ becomes bot/migrations), so a plain install can
# migrate. The
# installed torch satisfies the package's range, so pip keeps it.
COPY pyproject.toml README.md ./
COPY charrnn ./charrnn
COPY bot ./bot
COPY migrations ./migrations
RUN pip install '.[postgres,celery]' && pip install --no-deps "tinysoundfont>=0.3.7,<0.4"

# Run as an unprivileged user. /var/lib/lyricbot is where compose mounts the shared volume (MODEL_DIR,
# CORPUS_PATH); a new named volume takes this directory's owner. It is also the working directory, so
# the relative defaults (var/models, the SQLite file) land there too when nothing else is configured.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/lyricbot lyricbot \
 && mkdir -p /var/lib/lyricbot \
 && chown lyricbot:lyricbot /var/lib/lyricbot
USER lyricbot
WORKDIR /var/lib/lyricbot

CMD ["lyricbot", "run"]
