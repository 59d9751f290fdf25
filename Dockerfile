# spendbot: `docker build -t spendbot .` then `docker run -p 3978:3978 --env-file .env spendbot`.
# Build stage: turn the project into a wheel; nothing from it but the wheel reaches the image.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY skills ./skills
COPY storage ./storage
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: the app and its dependencies only, run as an unprivileged user.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SPENDBOT_HOST=0.0.0.0 \
    SPENDBOT_PORT=3978
COPY --from=build /wheels /wheels
# The wheel's own metadata pins the dependency ranges.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 spendbot
USER 10001
WORKDIR /home/spendbot
EXPOSE 3978
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3978/healthz', timeout=4)"]
ENTRYPOINT ["spendbot"]
CMD ["serve"]
