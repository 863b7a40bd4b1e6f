# The serving base for churn-api: packages come from a wheelhouse the host filled with
# `pip download` (no index inside the build), pinned to the versions that trained the model.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
COPY wheelhouse/ /wheels/
RUN pip install --no-cache-dir --no-index --find-links /wheels -r /wheels/requirements.txt \
 && rm -rf /wheels \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin app
ENV PYTHONUNBUFFERED=1 BENTOML_HOME=/tmp/bentoml BENTOML_DO_NOT_TRACK=true HOME=/home/app
